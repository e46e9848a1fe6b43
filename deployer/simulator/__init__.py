"""The mock SMS site: Windows file semantics, the SCM, site reset, Maintenance Manager and the lab.
A product feature, reached only through the mock transport (targets/mock.py)."""
