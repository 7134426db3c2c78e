"""Sparse AllReduce, top-k gradient compression and GossipDataParallel's allreduce with top-k,
from PyTorch on 3 ranks."""

import pytest

import sparse
from conftest import assert_ok, launch


@pytest.fixture(scope="module")
def sparse_results(job_dir):
    return launch("sparse.py", 3, job_dir)


@pytest.mark.parametrize("name", list(sparse.CHECKS))
def test_sparse(sparse_results, name):
    assert_ok(sparse_results, name)
