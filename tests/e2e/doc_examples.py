"""The examples in the docs, found and run: the parser, a small shell, and the comparisons.

Every fenced block in README.md and docs/*.md (docs/cli.md excepted: it is generated from
`--help` and checked by test_cli.py) carries a marker on the line before it:

    <!-- doc-test: KIND [key=value ...] -->

and `tests/e2e/test_docs.py` runs each document's blocks in order, in one session (one app
on one store, one working directory, one set of shell variables), so a later block may use
what an earlier one made. KIND is one of:

- `shell`: `sh` lines, run by `Shell` below: `handover` in-process on the session's store,
  `curl` against the app in-process (any host), `python` as a subprocess, `jq -r .field`,
  `cat`. `[--opt ARG]` is run with the option; a curl answer that is not 2xx, or a command
  that exits non-zero, fails the example unless the doc shows its output. Comment lines
  starting `# {` or `# [` right after a command are its expected output (JSON); in a block
  whose commands start with `$ `, the other lines are the expected output (text).
- `http`: lines `METHOD /path [JSON body] [(scope)] [-> STATUS] [JSON, or the key shorthand
  {"a", "b": [{"c"}]}]`, sent to the app (a session cookie is kept, as a browser would).
- `response` / `output`: what the previous request answered (JSON) or the previous command
  printed (text), or what the source `from=NAME` gives. JSON must have the same keys and
  values, except `ignore=k1,k2` (same type only) and strings ending in `...` (a prefix).
  Text is compared line by line with hashes, keys and signatures masked (`skeleton`).
- `request`: a JSON body, sent by the step `to=NAME`.
- `python`: run by the step `with=NAME` (which gives it its context), or written to
  `file=NAME` for a later block to run.
- `options`: commands not run (they serve forever or run for minutes): every script and
  `--option` they name is checked against the script's `--help`.
- `illustrative`: not run (a diagram). Kept rare; test_docs.py lists them.

`given=a,b` names set-up steps to run first. A line `<!-- doc-test: session key=value -->`
sets the document's session (e.g. `public_url=`). The steps, sources, sinks and
placeholders (upper-case words such as `INGEST_ID` in a command, filled from the store)
live in test_docs.py.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,})([\w+-]*)\s*$")
KINDS = {"shell", "http", "response", "output", "request", "python", "options", "illustrative"}


class ExampleFailed(AssertionError):
    """A documented example did not do what the doc says."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    kind: str | None
    options: Mapping[str, str]

    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    def names(self, key: str) -> list[str]:
        return [name for name in self.options.get(key, "").split(",") if name]


@dataclass(frozen=True)
class Document:
    path: Path
    session: Mapping[str, str]
    blocks: list[Block]


def parse_marker(text: str) -> tuple[str, dict[str, str]]:
    words = shlex.split(text)
    if not words:
        raise ValueError("an empty doc-test marker")
    options = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"doc-test option {word!r} is not key=value")
        options[key] = value
    return words[0], options


def read_document(path: Path) -> Document:
    """Every fenced block of a Markdown file, with the marker on the line before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    session: dict[str, str] = {}
    previous: str | None = None  # the last non-blank line outside a block
    index = 0
    while index < len(lines):
        line = lines[index]
        opening = FENCE.match(line)
        if opening is None:
            found = MARKER.match(line)
            if found:
                kind, options = parse_marker(found.group(1))
                if kind == "session":
                    session.update(options)
                    line = ""
            if line.strip():
                previous = line
            index += 1
            continue
        indent, fence, lang = opening.groups()
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            body.append(
                lines[index][len(indent) :] if lines[index].startswith(indent) else lines[index]
            )
            index += 1
        marker = MARKER.match(previous or "")
        kind, options = parse_marker(marker.group(1)) if marker else (None, {})
        blocks.append(Block(path, index - len(body), lang, "\n".join(body) + "\n", kind, options))
        previous = None
        index += 1
    return Document(path, session, blocks)


# -- comparing what the doc shows with what the code does -------------------------------------

_ELLIPSES = ("...", "…")


def match_json(
    expected: Any, actual: Any, ignore: frozenset[str] = frozenset(), at: str = "$"
) -> None:
    """`actual` has the shape of `expected`: the same keys at every level, lists of the same
    length, and equal values, except that a string ending in `...` (or `…`) matches any
    string that starts with the rest, `Ellipsis` matches anything, and a key in `ignore`
    only needs a value of the same JSON type (or null)."""
    if expected is Ellipsis:
        return
    if isinstance(expected, Each):
        if not isinstance(actual, list) or not actual:
            raise ExampleFailed(f"{at}: the doc shows a list of items, the code gave {actual!r}")
        for number, got in enumerate(actual):
            match_json(expected.shape, got, ignore, f"{at}[{number}]")
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            raise ExampleFailed(f"{at}: the doc shows an object, the code gave {actual!r}")
        if set(expected) != set(actual):
            missing, extra = (
                sorted(set(expected) - set(actual)),
                sorted(set(actual) - set(expected)),
            )
            raise ExampleFailed(
                f"{at}: keys differ; only in the doc {missing}, only in the code {extra}"
            )
        for key, value in expected.items():
            if key in ignore:
                _same_type(value, actual[key], f"{at}.{key}")
            else:
                match_json(value, actual[key], ignore, f"{at}.{key}")
        return
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            raise ExampleFailed(
                f"{at}: the doc shows {len(expected)} items, the code gave {actual!r}"
            )
        for number, (want, got) in enumerate(zip(expected, actual, strict=True)):
            match_json(want, got, ignore, f"{at}[{number}]")
        return
    if isinstance(expected, str) and expected.endswith(_ELLIPSES) and isinstance(actual, str):
        prefix = expected.rstrip(".…")
        if actual.startswith(prefix):
            return
    if type(expected) is not type(actual) or expected != actual:
        raise ExampleFailed(f"{at}: the doc shows {expected!r}, the code gave {actual!r}")


def _same_type(expected: Any, actual: Any, at: str) -> None:
    if actual is None or expected is None or expected is Ellipsis:
        return
    if isinstance(expected, bool) or isinstance(actual, bool):
        same = isinstance(expected, bool) and isinstance(actual, bool)
    elif isinstance(expected, int | float):
        same = isinstance(actual, int | float)
    else:
        same = type(expected) is type(actual)
    if not same:
        raise ExampleFailed(f"{at}: the doc shows {expected!r}, the code gave {actual!r}")


#: A base64 or hex run of 16+ characters, or a shortened one (`vmfi…4Pw=`): the bytes
#: differ from run to run (times are in every log entry), the layout must not.
_OPAQUE = re.compile(r"[A-Za-z0-9+/_-]*…[A-Za-z0-9+/=_-]*|[A-Za-z0-9+/_-]{16,}={0,2}")


def skeleton(text: str) -> list[str]:
    """The lines of `text` with opaque runs (hashes, signatures, keys) replaced by `<…>`."""
    return [_OPAQUE.sub("<…>", line.rstrip()) for line in text.strip("\n").splitlines()]


def match_text(expected: str, actual: str) -> None:
    """Every line the doc shows appears in what the code printed, in order (by skeleton)."""
    got = skeleton(actual)
    position = 0
    for line in skeleton(expected):
        try:
            position = got.index(line, position) + 1
        except ValueError:
            raise ExampleFailed(f"the doc shows {line!r}; the code printed:\n{actual}") from None


def parse_shape(text: str) -> Any:
    """JSON, or the docs' shorthand for an object's keys: `{"number", "state", "numbers":
    [{"held_from", ...}]}` (a bare key means any value)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    keyed = re.sub(r'(?<=[{,])(\s*)("[^"]+")(?=\s*[,}])', r"\1\2: null", text)
    keyed = keyed.replace("...", '"\\u0000"')
    value = json.loads(keyed)
    return _shorthand(value)


@dataclass(frozen=True)
class Each:
    """In the shorthand, `[shape]`: a non-empty list whose every item has that shape."""

    shape: Any


def _shorthand(value: Any) -> Any:
    if value is None or value == "\u0000":
        return Ellipsis
    if isinstance(value, dict):
        return {key: _shorthand(item) for key, item in value.items()}
    if isinstance(value, list) and len(value) == 1:
        return Each(_shorthand(value[0]))
    if isinstance(value, list):
        return [_shorthand(item) for item in value]
    return value


# -- a small shell --------------------------------------------------------------------------


@dataclass
class Run:
    """What a command did: its output, and its exit status."""

    stdout: str
    stderr: str = ""
    status: int = 0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


Command = Callable[[list[str], str], Run]


@dataclass
class Step:
    """One command line of a shell block and the output the doc shows for it."""

    text: str
    line: int
    expected_json: str | None = None
    expected_text: str | None = None


def _logical_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line number, text, whether it is a whole-line comment) for each logical line:
    backslash-newline joins lines, a quoted string may span lines, and a comment runs to
    the end of its line."""
    current: list[str] = []
    quote: str | None = None
    start = number = 1
    i = 0
    while i < len(text):
        char = text[i]
        if quote is None and char == "#" and (not current or current[-1] in " \t"):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            current.append(text[i:end])
            i = end
            continue
        if char == "\\" and quote != "'" and i + 1 < len(text):
            if text[i + 1] == "\n" and quote is None:
                current.append(" ")
                number += 1
            else:
                current += [char, text[i + 1]]
                number += text[i + 1] == "\n"
            i += 2
            continue
        if char == "\n":
            number += 1
            if quote is None:
                line = "".join(current)
                yield start, line, line.lstrip().startswith("#")
                current, start = [], number
                i += 1
                continue
        if quote is None and char in "'\"":
            quote = char
        elif quote == char:
            quote = None
        current.append(char)
        i += 1
    line = "".join(current)
    if line.strip():
        yield start, line, line.lstrip().startswith("#")


def shell_steps(text: str) -> list[Step]:
    """The commands of a block with the output the doc shows after each."""
    lines = list(_logical_lines(text))
    prompted = any(line.startswith("$ ") for _, line, _ in lines)
    steps: list[Step] = []
    for number, line, comment in lines:
        if prompted:
            if line.startswith("$ "):
                steps.append(Step(line[2:], number))
            elif steps and line.strip():
                steps[-1].expected_text = (steps[-1].expected_text or "") + line + "\n"
            continue
        if comment:
            body = line.lstrip()[1:].strip()
            if steps and (body.startswith(("{", "[")) or steps[-1].expected_json is not None):
                steps[-1].expected_json = (steps[-1].expected_json or "") + body + "\n"
            continue
        if line.strip():
            steps.append(Step(line, number))
    return steps


@dataclass
class Shell:
    """Runs `sh` examples: variables, `$(...)`, quotes, pipes, `>` and `[--optional]`.

    `commands` maps a program name to what runs it; `placeholders` maps an upper-case word
    to its value (or to a function of the command's words giving it), filled in where a
    command names it.
    """

    commands: dict[str, Command]
    cwd: Path
    variables: dict[str, str] = field(default_factory=dict)
    placeholders: dict[str, Any] = field(default_factory=dict)
    last: Run | None = None

    def run_block(self, text: str) -> list[Run]:
        runs = []
        for step in shell_steps(text):
            try:
                run = self.run_line(step.text, check=not (step.expected_json or step.expected_text))
                if step.expected_json is not None:
                    match_json(parse_shape(step.expected_json), _json_lines(run.stdout))
                if step.expected_text is not None:
                    match_text(step.expected_text, run.output)
            except ExampleFailed as failed:
                raise ExampleFailed(f"line {step.line}: {step.text.strip()}\n{failed}") from None
            runs.append(run)
        return runs

    def run_line(self, line: str, check: bool = True) -> Run:
        words = self._words(line)
        if (
            len(words) == 1
            and isinstance(words[0], str)
            and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0])
        ):
            name, _, value = words[0].partition("=")
            self.variables[name] = value
            return Run("")
        run = Run("")
        stdin = ""
        for command, target in _pipeline(words):
            run = self._run(command, stdin)
            if check and run.status != 0:
                raise ExampleFailed(
                    f"{' '.join(command)} exited {run.status}:\n{run.stdout}{run.stderr}"
                )
            stdin = run.stdout
            if target is not None:
                (self.cwd / target).write_text(run.stdout)
                run = Run("", run.stderr, run.status)
        self.last = run
        return run

    def _run(self, words: list[str], stdin: str) -> Run:
        words = self._fill(words)
        program = words[0]
        handler = self.commands.get(program) or self.commands.get(Path(program).name)
        if handler is None:
            raise ExampleFailed(f"the doc runs {program!r}, which the doc tests cannot run")
        return handler(words[1:], stdin)

    def _fill(self, words: list[str]) -> list[str]:
        filled: list[str] = []
        for word in words:
            value = self.placeholders.get(word)
            if value is None:
                filled.append(word)
                continue
            value = value(words) if callable(value) else value
            filled += value if isinstance(value, list) else [str(value)]
        return filled

    # -- words -----------------------------------------------------------------------------

    def _words(self, line: str) -> list[Any]:
        """Words after quotes and expansions; `|` and `>` stay as `_Op`s."""
        words: list[Any] = []
        current: list[str] = []
        started = False
        i = 0
        while i < len(line):
            char = line[i]
            if char in " \t\n":
                if started:
                    words.append("".join(current))
                    current, started = [], False
                i += 1
            elif char == "#" and not started:
                break
            elif char in "|>":
                if started:
                    words.append("".join(current))
                    current, started = [], False
                words.append(_Op(char))
                i += 1
            elif char == "'":
                end = line.index("'", i + 1)
                current.append(line[i + 1 : end])
                started, i = True, end + 1
            elif char == '"':
                i, text = self._double_quoted(line, i + 1)
                current.append(text)
                started = True
            elif char == "$":
                i, text = self._expand(line, i)
                current.append(text)
                started = True
            elif char == "\\" and i + 1 < len(line):
                current.append(line[i + 1])
                started, i = True, i + 2
            else:
                current.append(char)
                started, i = True, i + 1
        if started:
            words.append("".join(current))
        return _optional(words)

    def _double_quoted(self, line: str, i: int) -> tuple[int, str]:
        text: list[str] = []
        while line[i] != '"':
            if line[i] == "$":
                i, expanded = self._expand(line, i)
                text.append(expanded)
            elif line[i] == "\\" and line[i + 1] in '"$\\`':
                text.append(line[i + 1])
                i += 2
            else:
                text.append(line[i])
                i += 1
        return i + 1, "".join(text)

    def _expand(self, line: str, i: int) -> tuple[int, str]:
        if line.startswith("$(", i):
            end = _closing(line, i + 1)
            inner = self.run_line(line[i + 2 : end])
            return end + 1, inner.stdout.rstrip("\n")
        found = re.compile(r"\$(?:\{(\w+)\}|(\w+))").match(line, i)
        if not found:
            return i + 1, "$"
        name = found.group(1) or found.group(2)
        if name not in self.variables:
            raise ExampleFailed(f"${name} is not set (a doc-test given= step sets it)")
        return found.end(), self.variables[name]


@dataclass(frozen=True)
class _Op:
    symbol: str


def _closing(line: str, open_at: int) -> int:
    depth, quote = 0, None
    for i in range(open_at, len(line)):
        char = line[i]
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ExampleFailed(f"unbalanced $( in {line!r}")


def _optional(words: list[Any]) -> list[Any]:
    """`[--json]` and `[--region CN]` (optional arguments) are run with the option."""
    out: list[Any] = []
    for word in words:
        if isinstance(word, str) and word.startswith("[") and len(word) > 1:
            word = word[1:]
        if isinstance(word, str) and word.endswith("]") and len(word) > 1 and "[" not in word:
            word = word[:-1]
        out.append(word)
    return out


def _pipeline(words: list[Any]) -> Iterator[tuple[list[str], str | None]]:
    command: list[str] = []
    target: str | None = None
    redirect = False
    for word in words:
        if isinstance(word, _Op) and word.symbol == "|":
            yield command, target
            command, target = [], None
        elif isinstance(word, _Op):
            redirect = True
        elif redirect:
            target, redirect = word, False
        else:
            command.append(word)
    yield command, target


def _json_lines(text: str) -> Any:
    """A JSON document, or NDJSON as a list."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def jq(args: list[str], stdin: str) -> Run:
    """`jq [-r] .a.b`: the subset the docs use."""
    raw = "-r" in args
    path = [arg for arg in args if arg != "-r"]
    value = json.loads(stdin)
    for key in path[0].strip(".").split(".") if path and path[0] != "." else []:
        value = value[key]
    text = value if raw and isinstance(value, str) else json.dumps(value)
    return Run(text + "\n")
