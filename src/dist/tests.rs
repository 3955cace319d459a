use super::*;

#[test]
fn the_workers_split_into_contiguous_equal_blocks() {
    let blocks: Vec<_> = (0..4).map(|r| block(8, r, 4)).collect();
    assert_eq!(blocks, [0..2, 2..4, 4..6, 6..8]);
    assert_eq!(block(3, 0, 1), 0..3);
    // one process: every worker, and the collectives are the identity
    assert_eq!(workers(5), 0..5);
    assert!(check_split(5).is_ok());
    let t = Tensor::from_slice(&[1.0f64, 2.0]);
    sum(&t);
    assert_eq!(Vec::<f64>::try_from(&t).unwrap(), [1.0, 2.0]);
    assert_eq!(sum_scalar(3.0), 3.0);
    assert!(agree(true) && !agree(false));
}

#[test]
fn a_rank_resumes_from_its_own_tensors_over_rank_0s() {
    let t = |v: f64| Tensor::from_slice(&[v]);
    let saved = vec![
        ("optimizer.dual".to_string(), t(1.0)),
        ("optimizer.w".to_string(), t(2.0)),
        ("rank0x.odd".to_string(), t(5.0)),
        ("rank1.optimizer.dual".to_string(), t(3.0)),
        ("rank12.optimizer.dual".to_string(), t(4.0)),
    ];
    // rank 0 (one process): rank 0's tensors; other ranks' are dropped, a name that only
    // looks like a rank's is kept
    let mut own = own_state(saved);
    own.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = own.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["optimizer.dual", "optimizer.w", "rank0x.odd"]);
    assert_eq!(own[0].1.double_value(&[0]), 1.0);
}

#[test]
fn one_process_checkpoints_its_state_as_it_is() {
    let named = vec![("a".to_string(), Tensor::from_slice(&[1i64, 2]))];
    let out = gather_state(named).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "a");
}
