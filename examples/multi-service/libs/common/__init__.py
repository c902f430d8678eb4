"""Code shared by every service."""

GREETING = "hello from libs/common"
