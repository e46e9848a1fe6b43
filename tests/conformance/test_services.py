"""Service conformance: query, stop, start, control codes and errors, from every target."""

from __future__ import annotations

import pytest

from conformance.adapters import CONTROL_STOPPED_NOT_1062, CUSTOM_CODES_ARE_87, ServicesUnderTest
from deployer.targets.base import ServiceError


def test_query_a_running_service(services_target: ServicesUnderTest):
    t = services_target
    st = t.services.query(t.service)
    assert st.state == "running"
    assert st.name.casefold() == t.service.casefold()


def test_stop_and_start_wait_for_the_final_state(services_target: ServicesUnderTest):
    t = services_target
    assert t.services.stop(t.service, 60).state == "stopped"
    assert t.services.query(t.service).state == "stopped"
    with pytest.raises(ServiceError) as e:
        t.services.stop(t.service, 60)
    assert e.value.winerror == 1062
    assert t.services.start(t.service, 60).state == "running"
    assert t.services.query(t.service).state == "running"
    with pytest.raises(ServiceError) as e:
        t.services.start(t.service, 60)
    assert e.value.winerror == 1056


def test_unknown_service_is_1060(services_target: ServicesUnderTest):
    t = services_target
    for call in (lambda: t.services.query("NO_SUCH_SERVICE"), lambda: t.services.stop("NO_SUCH_SERVICE", 10),
                 lambda: t.services.start("NO_SUCH_SERVICE", 10), lambda: t.services.control("NO_SUCH_SERVICE", 130)):
        with pytest.raises(ServiceError) as e:
            call()
        assert e.value.winerror == 1060
        assert "does not exist as an installed service" in str(e.value)


def test_user_defined_control_codes(services_target: ServicesUnderTest):
    t = services_target
    if CUSTOM_CODES_ARE_87 in t.differences:
        # Samba is not Windows: its Spooler accepts no user-defined code and answers every
        # one with ERROR_INVALID_PARAMETER (87), where Windows would run or answer 1052.
        for code in (t.accepted_code, t.refused_code):
            with pytest.raises(ServiceError) as e:
                t.services.control(t.service, code)
            assert e.value.winerror == 87
        return
    t.services.control(t.service, t.accepted_code)
    with pytest.raises(ServiceError) as e:
        t.services.control(t.service, t.refused_code)
    assert e.value.winerror == 1052
    assert "not valid for this service" in str(e.value)


def test_control_code_to_a_stopped_service(services_target: ServicesUnderTest):
    t = services_target
    t.services.stop(t.service, 60)
    try:
        with pytest.raises(ServiceError) as e:
            t.services.control(t.service, t.accepted_code)
        if CONTROL_STOPPED_NOT_1062 in t.differences:
            assert e.value.winerror == 87  # Samba rejects the code before looking at the state
        else:
            assert e.value.winerror == 1062
    finally:
        t.services.start(t.service, 60)
