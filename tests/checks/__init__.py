"""Tests of the checks package, each against a real server on loopback or a hostile one."""
