"""Real servers for the tests: each module starts one on 127.0.0.1 (private config, free
port, temp dirs), once per session, and stops it by PID. In CI a server that cannot start
is a failure, never a skip."""
