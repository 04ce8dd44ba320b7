"""``python -m miar.report readme [README.md] [results]`` rewrites the README's generated blocks (the lead and the results)."""

from __future__ import annotations

import sys

from miar.report.readme import update_readme


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "readme" or len(args) > 3:
        print("usage: python -m miar.report readme [README.md] [results]", file=sys.stderr)
        return 2
    readme = args[1] if len(args) > 1 else "README.md"
    changed = update_readme(readme, args[2] if len(args) > 2 else "results")
    print(f"{readme}: generated blocks {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
