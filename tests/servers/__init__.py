"""Real servers and third-party stand-ins that tests start privately on free loopback ports."""
