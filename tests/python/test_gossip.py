"""The gossip custom ops and GossipDataParallel on 4 ranks."""

import pytest

import gossip
from conftest import assert_ok, launch


@pytest.fixture(scope="module")
def gossip_results(job_dir):
    return launch("gossip.py", 4, job_dir)


@pytest.mark.parametrize("name", list(gossip.CHECKS))
def test_gossip(gossip_results, name):
    assert_ok(gossip_results, name)
