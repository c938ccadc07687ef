//! Soft minima and Sinkhorn (unrolled and implicit).

use super::*;

#[test]
fn softmin_has_gradients_in_cost_and_h() {
    use gradflux::SoftminAxis;
    for axis in [SoftminAxis::PerRow, SoftminAxis::PerColumn] {
        let h_len = if axis == SoftminAxis::PerRow { 4 } else { 3 };
        check_op(
            &format!("softmin {axis:?}"),
            &[arg(&[3, 4], 0.0, 1.0), arg(&[h_len], -1.0, 1.0)],
            move |g, x| g.softmin(x[0], x[1], 0.3, axis),
        );
        check_op(
            &format!("batched softmin {axis:?}"),
            &[arg(&[2, 3, 4], 0.0, 1.0), arg(&[2, h_len], -1.0, 1.0)],
            move |g, x| g.softmin(x[0], x[1], 0.8, axis),
        );
    }
}

/// The online soft minimum over points has gradients in both clouds and in `h`, for both
/// costs, batched, with more coordinates than one gradient block (16) and more points than
/// one tile (64) on the reduced side.
#[test]
fn point_softmin_has_gradients_in_the_points_and_h() {
    use gradflux::PointCost;
    for cost in [PointCost::SqEuclidean, PointCost::Euclidean] {
        check_op(
            &format!("point_softmin {cost:?}"),
            &[
                arg(&[3, 2], 0.0, 1.0),
                arg(&[5, 2], 0.0, 1.0),
                arg(&[5], -1.0, 1.0),
            ],
            move |g, x| g.point_softmin(x[0], x[1], x[2], 0.3, cost),
        );
        check_op(
            &format!("batched point_softmin {cost:?}"),
            &[
                arg(&[2, 4, 17], 0.0, 1.0),
                arg(&[2, 67, 17], 0.0, 1.0),
                arg(&[2, 67], -1.0, 1.0),
            ],
            move |g, x| g.point_softmin(x[0], x[1], x[2], 2.0, cost),
        );
    }
}

/// Unrolled Sinkhorn is an ordinary differentiable function of the cost and the weights
/// (here a few iterations, balanced and unbalanced, with ε-scaling).
#[test]
fn unrolled_sinkhorn_has_exact_gradients() {
    use gradflux::{EpsScaling, OtGradient, SinkhornOptions};
    for (label, rho) in [("balanced", None), ("unbalanced", Some(0.7))] {
        let options = SinkhornOptions {
            rho_a: rho,
            rho_b: rho,
            eps_scaling: Some(EpsScaling {
                start: 2.0,
                factor: 0.5,
            }),
            gradient: OtGradient::Unrolled,
            ..SinkhornOptions::new(0.4, 4)
        };
        check_op(
            &format!("unrolled sinkhorn {label}"),
            &[
                arg(&[3, 4], 0.0, 1.0),
                arg(&[3], 0.5, 1.0),
                arg(&[4], 0.5, 1.0),
            ],
            move |g, x| {
                let ot = g.sinkhorn(x[0], x[1], x[2], None, options)?;
                g.add(g.ot_objective(&ot)?, g.ot_transport_cost(&ot)?)
            },
        );
    }
}

/// Implicit Sinkhorn gradients are those of the converged solution: finite differences of
/// a solve run to convergence agree with them, for losses that read the plan (balanced:
/// the transport cost) or the potentials themselves (unbalanced, where they are unique),
/// dense and batched, with ε-scaling, and online over point clouds.
#[test]
fn implicit_sinkhorn_gradients_match_finite_differences() {
    use gradflux::{EpsScaling, ImplicitSolve, OtGradient, PointCost, SinkhornOptions};
    let implicit = OtGradient::Implicit(ImplicitSolve {
        max_iterations: 60,
        tolerance: 1e-12,
    });
    for (label, rho) in [("balanced", None), ("unbalanced", Some(0.7))] {
        let options = SinkhornOptions {
            rho_a: rho,
            rho_b: rho.map(|r| 2.0 * r),
            eps_scaling: Some(EpsScaling {
                start: 2.0,
                factor: 0.5,
            }),
            gradient: implicit,
            ..SinkhornOptions::new(0.3, 400)
        };
        let balanced = rho.is_none();
        check_op(
            &format!("implicit sinkhorn {label}"),
            &[
                arg(&[2, 3, 5], 0.0, 1.0),
                arg(&[2, 3], 0.5, 1.0),
                arg(&[2, 5], 0.5, 1.0),
            ],
            move |g, x| {
                // Balanced problems need equal masses: normalise both sides.
                let (a, b) = if balanced {
                    let unit = |w| g.div(w, g.sum_keepdim(w, -1)?);
                    (unit(x[1])?, unit(x[2])?)
                } else {
                    (x[1], x[2])
                };
                let ot = g.sinkhorn(x[0], a, b, None, options)?;
                if balanced {
                    g.ot_transport_cost(&ot)
                } else {
                    Ok(ot.f)
                }
            },
        );
    }
    for cost in [PointCost::SqEuclidean, PointCost::Euclidean] {
        let options = SinkhornOptions {
            gradient: implicit,
            ..SinkhornOptions::new(0.5, 300)
        };
        check_op(
            &format!("implicit sinkhorn_points {cost:?}"),
            &[
                arg(&[4, 3], 0.0, 1.0),
                arg(&[6, 3], 0.0, 1.0),
                arg(&[4], 0.5, 1.0),
                arg(&[6], 0.5, 1.0),
            ],
            move |g, x| {
                let unit = |w| g.div(w, g.sum_keepdim(w, -1)?);
                let (a, b) = (unit(x[2])?, unit(x[3])?);
                let ot = g.sinkhorn_points(x[0], x[1], a, b, None, cost, options)?;
                g.ot_transport_cost(&ot)
            },
        );
    }
}
