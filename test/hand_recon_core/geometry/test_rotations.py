"""Tests for hand_recon_core.geometry.rotations."""

import math

import pytest
import torch

from hand_recon_core.geometry.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rot6d,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    rot6d_to_matrix,
)

RZ90 = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _random_axis_angle(n, max_angle=math.pi - 1e-3, seed=0):
    g = torch.Generator().manual_seed(seed)
    axis = torch.randn(n, 3, generator=g, dtype=torch.float64)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    angle = torch.rand(n, 1, generator=g, dtype=torch.float64) * max_angle
    return axis * angle


def test_axis_angle_90_deg_about_z():
    r = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    torch.testing.assert_close(r, RZ90, atol=1e-12, rtol=0)
    # (1, 0, 0) -> (0, 1, 0): counter-clockwise seen from +z (right-hand rule).
    torch.testing.assert_close(r @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                               torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12, rtol=0)


def test_quaternion_90_deg_about_z_is_wxyz():
    h = math.sqrt(0.5)
    q = torch.tensor([h, 0.0, 0.0, h], dtype=torch.float64)
    torch.testing.assert_close(quaternion_to_matrix(q), RZ90, atol=1e-12, rtol=0)
    torch.testing.assert_close(matrix_to_quaternion(RZ90), q, atol=1e-12, rtol=0)
    aa = torch.tensor([0, 0, math.pi / 2], dtype=torch.float64)
    torch.testing.assert_close(axis_angle_to_quaternion(aa), q, atol=1e-12, rtol=0)


def test_rot6d_columns_convention():
    x = matrix_to_rot6d(RZ90)
    # first column (0, 1, 0), second column (-1, 0, 0)
    torch.testing.assert_close(x, torch.tensor([0.0, 1, 0, -1, 0, 0], dtype=torch.float64))
    torch.testing.assert_close(rot6d_to_matrix(x), RZ90)


def test_identity_everywhere():
    z = torch.zeros(2, 3)
    eye = torch.eye(3).expand(2, 3, 3)
    torch.testing.assert_close(axis_angle_to_matrix(z), eye)
    torch.testing.assert_close(matrix_to_axis_angle(eye), z)
    torch.testing.assert_close(matrix_to_quaternion(eye), torch.tensor([[1.0, 0, 0, 0]] * 2))
    torch.testing.assert_close(quaternion_to_axis_angle(torch.tensor([1.0, 0, 0, 0])), torch.zeros(3))


@pytest.mark.parametrize("batch_shape", [(), (7,), (2, 5)])
def test_round_trips_batched(batch_shape):
    aa = _random_axis_angle(math.prod(batch_shape) or 1).reshape(*batch_shape, 3)
    r = axis_angle_to_matrix(aa)
    assert r.shape == (*batch_shape, 3, 3)
    torch.testing.assert_close(r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand_as(r))
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(batch_shape, dtype=torch.float64))
    torch.testing.assert_close(matrix_to_axis_angle(r), aa)
    torch.testing.assert_close(quaternion_to_axis_angle(axis_angle_to_quaternion(aa)), aa)
    torch.testing.assert_close(quaternion_to_matrix(matrix_to_quaternion(r)), r)
    torch.testing.assert_close(rot6d_to_matrix(matrix_to_rot6d(r)), r)
    torch.testing.assert_close(quaternion_to_matrix(axis_angle_to_quaternion(aa)), r)


def test_near_pi_and_tiny_angles_float32():
    angles = torch.tensor([1e-8, 1e-5, 1e-3, 0.5, math.pi - 1e-4], dtype=torch.float32)
    axis = torch.nn.functional.normalize(torch.tensor([0.3, -0.5, 0.8]), dim=0)
    aa = angles[:, None] * axis
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    torch.testing.assert_close(back, aa, atol=2e-6, rtol=1e-5)


def test_half_turn_matrix_to_quaternion():
    r = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # pi about x
    q = matrix_to_quaternion(r)
    torch.testing.assert_close(q.abs(), torch.tensor([0.0, 1, 0, 0], dtype=torch.float64))
    expected = torch.tensor([math.pi, 0, 0], dtype=torch.float64)
    torch.testing.assert_close(matrix_to_axis_angle(r).abs(), expected)


def test_quaternion_sign_and_scale_invariance():
    q = torch.tensor([0.2, -0.4, 0.1, 0.7], dtype=torch.float64)
    r = quaternion_to_matrix(q)
    torch.testing.assert_close(quaternion_to_matrix(-3.0 * q), r)
    torch.testing.assert_close(quaternion_to_axis_angle(-q), quaternion_to_axis_angle(2 * q))
    q_back = matrix_to_quaternion(r)
    assert q_back[0] >= 0
    torch.testing.assert_close(q_back, q / q.norm())


def test_rot6d_gram_schmidt_of_unnormalised_input():
    x = torch.tensor([2.0, 0.0, 0.0, 1.0, 3.0, 0.0])
    torch.testing.assert_close(rot6d_to_matrix(x), torch.eye(3))


def test_gradient_at_zero_angle_is_finite_and_correct():
    aa = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    r = axis_angle_to_matrix(aa)
    (jac,) = torch.autograd.grad(r[1, 0], aa)  # R10 = z-component derivative = +1 at zero
    torch.testing.assert_close(jac, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    for fn in (axis_angle_to_matrix, axis_angle_to_quaternion):
        aa = torch.zeros(4, 3, requires_grad=True)
        fn(aa).pow(2).sum().backward()
        assert torch.isfinite(aa.grad).all()
    # d(log(exp(aa)))/daa = identity at zero.
    aa = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(lambda v: matrix_to_axis_angle(axis_angle_to_matrix(v)), aa)
    torch.testing.assert_close(jac, torch.eye(3, dtype=torch.float64))


def test_gradcheck_generic_points():
    aa = _random_axis_angle(3, seed=1).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))
    assert torch.autograd.gradcheck(lambda v: matrix_to_axis_angle(axis_angle_to_matrix(v)), (aa,))
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot6d_to_matrix, (x,))
    small = (1e-4 * torch.randn(2, 3, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (small,))
    assert torch.autograd.gradcheck(axis_angle_to_quaternion, (small,))


def test_float16_inputs_keep_dtype():
    aa = torch.tensor([[0.0, 0.0, math.pi / 2], [0.0, 0.0, 0.0]], dtype=torch.float16)
    r = axis_angle_to_matrix(aa)
    assert r.dtype == torch.float16
    torch.testing.assert_close(r[0].float(), RZ90.float(), atol=1e-3, rtol=0)
    assert matrix_to_axis_angle(r).dtype == torch.float16
    assert rot6d_to_matrix(matrix_to_rot6d(r)).dtype == torch.float16
    assert quaternion_to_axis_angle(matrix_to_quaternion(r)).dtype == torch.float16


def test_bad_shape_raises():
    with pytest.raises(ValueError):
        axis_angle_to_matrix(torch.zeros(4))
    with pytest.raises(ValueError):
        rot6d_to_matrix(torch.zeros(3, 3))
