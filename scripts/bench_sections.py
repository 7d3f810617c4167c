"""docs/benchmarks.md is assembled from sections, one per benchmark script, each between
`<!-- NAME:start -->` and `<!-- NAME:end -->`; a script rewrites only its own section."""

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(path: Path, name: str, section: str) -> None:
    """Replace section `name` of `path` with `section` (appended if the file lacks it)."""
    start, end = markers(name)
    text = path.read_text() if path.exists() else ""
    body = f"{start}\n{section.strip()}\n{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + body + text[text.index(end) + len(end):]
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + body + "\n"
    path.write_text(text)


def emit(text: str, output: str, section: str | None = None) -> None:
    """A benchmark's result: printed when `output` is "-"; else written into `output`, as its
    section `section` (then printed too) or as the whole file."""
    if output == "-":
        print(text)
    elif section is not None:
        write_section(Path(output), section, text)
        print(text)
    else:
        Path(output).write_text(text)
        print(f"wrote {output}")
