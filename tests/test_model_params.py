"""Constructor checks of the system model: every bad parameter is a clear error."""

import pytest

from sim.model.device import Device
from sim.model.fabric import Fabric
from sim.model.ppm import PpmHw
from sim.model.ppm_sw import PpmSw
from sim.model.tracker import Tracker


@pytest.mark.parametrize("kw, message", [
    ({"slots": 0}, "slots must be an integer from 1 to 31"),
    ({"slots": 32}, "slots must be an integer from 1 to 31"),
    ({"slots": True}, "slots must be an integer from 1 to 31"),
    ({"pps": 31}, "pps must be an integer from 1 to 30"),
    ({"resource_pps": 0, "resource_cards": 1}, "resource_pps must be an integer from 1 to 30"),
    ({"slots": 30, "resource_cards": 2}, "resource_cards must be an integer from 0 to 1"),
    ({"ingress": "random"}, "ingress must be one of mac, rr"),
    ({"fabric_steps": 0}, "fabric_steps must be a positive integer or None"),
])
def test_device_rejects_a_bad_parameter(kw, message):
    with pytest.raises(ValueError, match=message):
        Device(**kw)


def test_device_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        Device(4, 4)


def test_ppm_sw_rejects_an_unknown_policy():
    ppm = PpmHw(Fabric(), Tracker(), {0: 1}, lambda: 0.0)
    with pytest.raises(ValueError, match="policy must be one of least_loaded, random"):
        PpmSw(Fabric(), ppm, [(0, 0)], policy="fastest")


def test_ppm_sw_needs_a_packet_processor():
    ppm = PpmHw(Fabric(), Tracker(), {0: 1}, lambda: 0.0)
    with pytest.raises(ValueError, match="at least one packet processor"):
        PpmSw(Fabric(), ppm, [])


@pytest.mark.parametrize("max_sessions", [1, (1 << 21) + 1])
def test_ppm_session_count_must_fit_the_fid_index(max_sessions):
    with pytest.raises(ValueError, match="max_sessions must be from 2 to 2\\*\\*21"):
        PpmHw(Fabric(), Tracker(), {0: 1}, lambda: 0.0, max_sessions=max_sessions)


def test_fabric_refuses_two_handlers_on_one_endpoint():
    fabric = Fabric()
    fabric.attach((0, 0), lambda f: None)
    with pytest.raises(ValueError, match="attached twice"):
        fabric.attach((0, 0), lambda f: None)
