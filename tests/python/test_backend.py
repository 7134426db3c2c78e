"""The torch.distributed backend "gccl": ops against gloo, async work, misuse, failures, DDP."""

import pytest

import backend_ops
import failures
from conftest import assert_ok, launch


@pytest.fixture(scope="module")
def ops_results(job_dir):
    return launch("backend_ops.py", 4, job_dir)


@pytest.mark.parametrize("name", list(backend_ops.CHECKS))
def test_backend_op(ops_results, name):
    assert_ok(ops_results, name)


@pytest.mark.parametrize("name", list(failures.CHECKS))
def test_failure(tmp_path, name):
    assert_ok(launch("failures.py", 2, tmp_path, checks=[name],
                     env={"GCCL_TIMEOUT_MS": "5000"}), name)


def test_ddp_with_gccl_ends_bit_identical_to_ddp_with_gloo(tmp_path):
    assert_ok(launch("ddp.py", 2, tmp_path), "ddp_matches_gloo")


def test_entry_point_registers_the_backend_without_import(tmp_path):
    assert_ok(launch("entry_point.py", 2, tmp_path), "init_without_import")
