"""The cluster-exchange probe (experiments/cluster_probe.py) on the CPU: its float64 reference
recurrence, its refusals, and every form lowered for CUDA under both lowering semantics (Mosaic
GPU's interpret mode runs neither clusters nor the counter's atomics; the GPU script checks
them against the reference)."""

import numpy as np
import pytest

from experiments import cluster_probe as cp


def test_reference_follows_the_recurrence_by_hand():
  got = cp.reference(4, 2, 2, 512)
  # v0 = c + 1 = (1, 2); v1 = 0.25 * 3 + (1, 2); v2 = 0.25 * (1.75 + 2.75) + (1, 2).
  want = np.array([2.125, 3.125, 2.125, 3.125])
  assert got.shape == (4, 512)
  np.testing.assert_allclose(got, np.broadcast_to(want[:, None], (4, 512)))


def test_reference_sums_over_the_group_it_is_given():
  got = cp.reference(4, 2, 1, 512, group=4)
  # v0 = (1, 2, 1, 2); v1 = 0.125 * 6 + (1, 2, 1, 2).
  np.testing.assert_allclose(got[:, 0], [1.75, 2.75, 1.75, 2.75])


def test_reference_stays_bounded_for_long_runs():
  got = cp.reference(16, 8, 1000, 512)
  assert np.all(np.isfinite(got)) and got.max() < 2 * 8 + 2


@pytest.mark.parametrize("make", [cp.make_cluster_exchange, cp.make_grid_exchange,
                                  cp.make_split_exchange])
def test_bad_shapes_are_refused(make):
  with pytest.raises(ValueError, match="groups"):
    make(10, 4, 2)
  with pytest.raises(ValueError, match="multiple of 512"):
    make(8, 4, 2, width=768)


def test_split_refuses_slices_a_warpgroup_cannot_share_and_large_clusters():
  with pytest.raises(ValueError, match="multiple of 128"):
    cp.make_split_exchange(32, 8, 2, width=512)
  with pytest.raises(ValueError, match="portable"):
    cp.make_split_exchange(32, 16, 2, width=2048)


@pytest.mark.parametrize("semantics", ["Lane", "Warpgroup"])
@pytest.mark.parametrize("make,marker", [(cp.make_cluster_exchange, "mapa"),
                                         (cp.make_grid_exchange, "mosaic_gpu"),
                                         (cp.make_split_exchange, "mapa")])
def test_every_form_lowers_for_cuda(make, marker, semantics):
  # Warpgroup semantics run Mosaic GPU's dialect lowering here, where a DSMEM read of a sliced
  # buffer failed on the device (session 29); the kernels now read whole buffers.
  rng = np.random.default_rng()
  cluster = int(rng.choice([2, 4, 8]))
  text = make(4 * cluster, cluster, int(rng.integers(1, 5)), semantics=semantics).trace().lower(
      lowering_platforms=("cuda",)).as_text()
  assert "mosaic_gpu" in text and marker in text


def test_cluster_form_without_peers_reads_no_peer_memory():
  # The barrier-and-adds baseline of the cluster form: its own shared memory only.
  text = cp.make_cluster_exchange(8, 4, 3, peers=False).trace().lower(
      lowering_platforms=("cuda",)).as_text()
  assert "mosaic_gpu" in text and "mapa" not in text.replace("mapa.shared::cluster.u32", "")
