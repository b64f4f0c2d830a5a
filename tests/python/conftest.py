"""Shared by the Python suites: a missing test dependency skips with a message, except under the
test command (scripts/test.sh sets EKS_IPAM_REQUIRE_ALL=1), where it is a failure."""
import os
import shutil

import pytest

REQUIRE_ALL = os.environ.get("EKS_IPAM_REQUIRE_ALL") == "1"


def need(ok, msg):
    """Skip (or, under EKS_IPAM_REQUIRE_ALL=1, fail) with `msg` unless `ok`."""
    if ok:
        return ok
    if REQUIRE_ALL:
        pytest.fail(msg + " (required under EKS_IPAM_REQUIRE_ALL=1; scripts/test.sh installs it)")
    pytest.skip(msg)


def need_tool(name, package):
    """The path of command `name`, from Debian package `package`."""
    return need(shutil.which(name), f"{name} not installed (apt-get install {package})")
