"""One source per default: unset settings are the defaults of the rules they configure."""

from __future__ import annotations

from datetime import timedelta

from handover import bootstrap
from handover.config import Settings
from handover.domain.certificates import DEFAULT_VALIDITY
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.sign_in import SESSION_TTL
from handover.services.ssf.delivery import DeliveryPolicy


def _defaults() -> Settings:
    """Settings with every field at its default (the environment is not read)."""
    return Settings.model_construct()


def test_unset_settings_build_the_default_policies() -> None:
    settings = _defaults()
    assert settings.freeze_policy == FreezePolicy()
    assert bootstrap.delivery_policy(settings) == DeliveryPolicy()


def test_unset_lifetimes_are_the_domain_s() -> None:
    settings = _defaults()
    assert timedelta(days=settings.certificate_ttl_days) == DEFAULT_VALIDITY
    assert timedelta(seconds=settings.session_ttl_seconds) == SESSION_TTL


def test_a_setting_changes_only_what_it_names() -> None:
    settings = Settings.model_construct(max_freeze_days=200, delivery_retry_limit=5)
    assert settings.freeze_policy == FreezePolicy(max_freeze_days=200)
    assert bootstrap.delivery_policy(settings) == DeliveryPolicy(retry_limit=5)
