"""An example platform receiving Handover's signals with the `handover.receiver` kit."""
