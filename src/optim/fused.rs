//! Fused elementwise updates on the CPU: one pass over a step's buffers in place of the
//! tensor-op sequence, each element computed with the same operations in the same order as
//! that sequence, with a fused multiply-add wherever libtorch's AVX2 kernels have one
//! (`lerp`, as ATen's `lerp_vec`; a + b·c in `addcmul`, which GCC contracts). Chunks of the buffers run on a rayon pool
//! of libtorch's thread count; each chunk is compiled for AVX2 + FMA where the CPU has them.
//!
//! A step takes the fused path when every buffer is a contiguous f32 or f64 CPU tensor of one
//! kind and size, and `PISA_FUSED=0` is not set; otherwise (CUDA, other kinds) the tensor-op
//! path runs, which stays the reference (`src/optim/fused/tests.rs` compares the two).
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Sub};
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};

/// Elements per parallel chunk (256 KiB of f64).
const CHUNK: usize = 1 << 15;

/// f32 or f64 with the operations the kernels use.
pub trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + MulAssign
{
    /// A scalar as libtorch rounds it to the tensor's kind.
    fn of(v: f64) -> Self;
    fn sqrt(self) -> Self;
    /// self·a + b, rounded once.
    fn mul_add(self, a: Self, b: Self) -> Self;
}

macro_rules! real {
    ($($t:ty),*) => {$(
        impl Real for $t {
            fn of(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
        }
    )*};
}
real!(f32, f64);

/// torch's `lerp(start, end, weight)` as ATen's vectorised kernel computes it.
#[inline(always)]
fn lerp<T: Real>(start: T, end: T, weight: T) -> T {
    if weight < T::of(0.5) && weight > T::of(-0.5) {
        weight.mul_add(end - start, start)
    } else {
        (weight - T::of(1.0)).mul_add(end - start, end)
    }
}

/// `clamp_max(x, max)`, NaN kept.
#[inline(always)]
fn clamp_max<T: Real>(x: T, max: T) -> T {
    if x > max {
        max
    } else {
        x
    }
}

thread_local! {
    /// Set by [`with_tensor_ops`] on this thread.
    static TENSOR_OPS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("PISA_FUSED").map_or(true, |v| v != "0"))
        && !TENSOR_OPS.get()
}

/// Runs `f` with the tensor-op path on this thread (the reference the fused path is
/// compared with, in tests and benchmarks).
pub fn with_tensor_ops<R>(f: impl FnOnce() -> R) -> R {
    let before = TENSOR_OPS.replace(true);
    let result = f();
    TENSOR_OPS.set(before);
    result
}

fn avx2_fma() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// The rayon pool, as many threads as libtorch's at its first use (pisa sets that count
/// before any step).
fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(tch::get_num_threads().max(1) as usize)
            .thread_name(|i| format!("pisa-fused-{i}"))
            .build()
            .expect("a rayon pool")
    })
}

/// The kind the fused path runs in, if it applies to all of `tensors`.
fn fusable(tensors: &[&Tensor]) -> Option<Kind> {
    let kind = tensors[0].kind();
    let n = tensors[0].numel();
    let ok = enabled()
        && matches!(kind, Kind::Float | Kind::Double)
        && tensors.iter().all(|t| {
            t.kind() == kind && t.device() == Device::Cpu && t.is_contiguous() && t.numel() == n
        });
    ok.then_some(kind)
}

/// Runs `chunk(range)` over 0..n in parallel chunks, with AVX2 + FMA where the CPU has them.
fn for_chunks(n: usize, chunk: impl Fn(std::ops::Range<usize>) + Sync) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn wide(f: &(impl Fn(std::ops::Range<usize>) + Sync), r: std::ops::Range<usize>) {
        f(r)
    }
    let run = |start: usize| {
        let r = start..(start + CHUNK).min(n);
        #[cfg(target_arch = "x86_64")]
        if avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA (checked at run time).
            return unsafe { wide(&chunk, r) };
        }
        chunk(r)
    };
    if n <= CHUNK {
        run(0);
    } else {
        use rayon::prelude::*;
        pool().install(|| (0..n).into_par_iter().step_by(CHUNK).for_each(run));
    }
}

/// Raw pointers to a step's buffers, shared by the chunks (each touches its own range).
#[derive(Clone, Copy)]
struct Buffers<T, const N: usize>([*mut T; N]);
// SAFETY: the chunks of one step write disjoint ranges.
unsafe impl<T, const N: usize> Send for Buffers<T, N> {}
unsafe impl<T, const N: usize> Sync for Buffers<T, N> {}

impl<T, const N: usize> Buffers<T, N> {
    /// Safety: every tensor is a contiguous CPU tensor of T's kind; they do not overlap.
    unsafe fn of(tensors: [&Tensor; N], _: std::marker::PhantomData<T>) -> Self {
        Self(tensors.map(|t| t.data_ptr() as *mut T))
    }

    /// Buffer `i`'s elements in `r`. Safety: `r` lies within the buffers, and no other
    /// chunk holds it.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn at(&self, i: usize, r: &std::ops::Range<usize>) -> &mut [T] {
        self.offset(i, 0, r)
    }

    /// [`Buffers::at`] of the buffer that starts `offset` elements after buffer `i`.
    /// Safety: as `at`, for that buffer.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn offset(&self, i: usize, offset: usize, r: &std::ops::Range<usize>) -> &mut [T] {
        std::slice::from_raw_parts_mut(self.0[i].add(offset + r.start), r.len())
    }
}

/// Runs `kernel` over the tensors' elements in f32 or f64, if the fused path applies.
macro_rules! fused {
    ($tensors:expr, |$b:ident, $r:ident, $t:ident| $body:block) => {{
        let tensors = $tensors;
        match fusable(&tensors) {
            Some(kind) => {
                let n = tensors[0].numel();
                macro_rules! run {
                    ($ty:ty) => {{
                        type $t = $ty;
                        // SAFETY: `fusable` checked kind, device, layout and size; the
                        // callers pass distinct buffers.
                        let $b = unsafe { Buffers::of(tensors, std::marker::PhantomData::<$ty>) };
                        for_chunks(n, |$r| $body);
                    }};
                }
                if kind == Kind::Float {
                    run!(f32)
                } else {
                    run!(f64)
                }
                true
            }
            None => false,
        }
    }};
}

/// Adam's and AdamW's step (torch.optim.Adam without AMSGrad), as `baselines/adam.rs`'s
/// tensor ops: weight decay, m ← lerp(m, g, 1 − β₁), v ← β₂v + (1 − β₂)g²,
/// w ← w − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε). Returns false (nothing done) where the
/// fused path does not apply.
pub struct AdamStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    /// 1 − β₁ᵗ and 1 − β₂ᵗ.
    pub bias1: f64,
    pub bias2: f64,
}

pub fn adam(w: &Tensor, grad: &Tensor, m: &Tensor, v: &Tensor, s: &AdamStep) -> bool {
    fused!([w, grad, m, v], |b, r, T| {
        let decay = T::of(1.0 - s.lr * s.weight_decay);
        let l2 = T::of(s.weight_decay);
        let (w1, beta2, w2) = (T::of(1.0 - s.beta1), T::of(s.beta2), T::of(1.0 - s.beta2));
        let (root2, eps, step) = (T::of(s.bias2.sqrt()), T::of(s.eps), T::of(-s.lr / s.bias1));
        // SAFETY: this chunk's range.
        let (w, g, m, v) = unsafe { (b.at(0, &r), b.at(1, &r), b.at(2, &r), b.at(3, &r)) };
        for (((w, g), m), v) in w
            .iter_mut()
            .zip(g.iter())
            .zip(m.iter_mut())
            .zip(v.iter_mut())
        {
            let mut g = *g;
            if s.weight_decay != 0.0 {
                if s.decoupled {
                    *w *= decay;
                } else {
                    g = w.mul_add(l2, g);
                }
            }
            *m = lerp(*m, g, w1);
            *v = (g * w2).mul_add(g, *v * beta2);
            let denominator = (*v).sqrt() / root2 + eps;
            *w += (*m * step) / denominator;
        }
    })
}

/// SGD's step (torch.optim.SGD), as `baselines/sgd.rs`'s tensor ops: g + λw, the momentum
/// buffer b ← g on the first step, else μb + (1 − dampening)g, Nesterov g + μb, w − lr·g.
/// `buffer` is None without momentum.
pub struct SgdStep {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub first: bool,
}

pub fn sgd(w: &Tensor, grad: &Tensor, buffer: Option<&Tensor>, s: &SgdStep) -> bool {
    let Some(buffer) = buffer else {
        return fused!([w, grad], |b, r, T| {
            let (l2, step) = (T::of(s.weight_decay), T::of(-s.lr));
            // SAFETY: this chunk's range.
            let (w, g) = unsafe { (b.at(0, &r), b.at(1, &r)) };
            for (w, g) in w.iter_mut().zip(g.iter()) {
                let g = if s.weight_decay != 0.0 {
                    w.mul_add(l2, *g)
                } else {
                    *g
                };
                *w = g.mul_add(step, *w);
            }
        });
    };
    fused!([w, grad, buffer], |b, r, T| {
        let (l2, step) = (T::of(s.weight_decay), T::of(-s.lr));
        let (mu, keep) = (T::of(s.momentum), T::of(1.0 - s.dampening));
        // SAFETY: this chunk's range.
        let (w, g, v) = unsafe { (b.at(0, &r), b.at(1, &r), b.at(2, &r)) };
        for ((w, g), v) in w.iter_mut().zip(g.iter()).zip(v.iter_mut()) {
            let g = if s.weight_decay != 0.0 {
                w.mul_add(l2, *g)
            } else {
                *g
            };
            *v = if s.first { g } else { g.mul_add(keep, *v * mu) };
            let d = if s.nesterov { v.mul_add(mu, g) } else { *v };
            *w = d.mul_add(step, *w);
        }
    })
}

/// SISA's (2.13)-(2.14) with Q_i = Diag(√m_i) ((4.2)-(4.5)), as `admm/precondition.rs`'s
/// tensor ops for worker i, from `direction` = g_i: u = π_i + g_i, the moment from u by
/// (4.4) (scheme I: m + u²; II, III: lerp(m, u², 1 − β)), r = √min(m, clip) (+ ε/c), and
/// π_i ← π_i + u/(−1 − (ρc/σ)·r), i.e. π_i − σu/(σ + ρ√m_i).
pub struct SecondMomentDual {
    /// (4.4) scheme I: m accumulates u².
    pub accumulate: bool,
    pub beta: f64,
    /// η²(1 − β^{ℓ+1}) for scheme III, η² otherwise (4.3).
    pub clip: f64,
    /// √m_i = c·r.
    pub c: f64,
    pub eps: f64,
    pub sigma: f64,
    pub rho: f64,
}

pub fn second_moment_dual(
    direction: &Tensor,
    moment: &Tensor,
    dual: &Tensor,
    s: &SecondMomentDual,
) -> bool {
    fused!([direction, moment, dual], |b, r, T| {
        let (w1, clip, shift) = (T::of(1.0 - s.beta), T::of(s.clip), T::of(s.eps / s.c));
        let (minus_one, k) = (T::of(-1.0), T::of(-s.rho * s.c / s.sigma));
        // SAFETY: this chunk's range.
        let (d, m, p) = unsafe { (b.at(0, &r), b.at(1, &r), b.at(2, &r)) };
        for ((d, m), p) in d.iter().zip(m.iter_mut()).zip(p.iter_mut()) {
            // u = π_i + g_i, as the tensor path's g_i + π_i (addition commutes exactly)
            let u = *d + *p;
            *m = if s.accumulate {
                u.mul_add(u, *m)
            } else {
                lerp(*m, u * u, w1)
            };
            let mut root = clamp_max(*m, clip).sqrt();
            if s.eps != 0.0 {
                root += shift;
            }
            *p += u / root.mul_add(k, minus_one);
        }
    })
}

/// SISA's global update (2.9) in one process, as `admm/mod.rs`'s tensor ops: with
/// S⁺ = Σ_i α_i π_i over the rows of `dual` ([m, P]), w ← keep·w + old·S + new·S⁺ and
/// S ← S⁺ in one pass over w, S and the rows (a block of each at a time, so that w and S are
/// read once from memory).
pub struct GlobalStep {
    pub keep: f64,
    pub old: f64,
    pub new: f64,
}

/// Elements per block of [`global_update`]: its w and S blocks stay in the L1 cache while
/// the rows stream by.
const BLOCK: usize = 2048;

pub fn global_update(
    w: &Tensor,
    dual_sum: &Tensor,
    dual: &Tensor,
    alpha: &[f64],
    s: &GlobalStep,
) -> bool {
    if alpha.is_empty() || dual.size()[0] != alpha.len() as i64 || !dual.is_contiguous() {
        return false;
    }
    let stride = w.numel();
    fused!([w, dual_sum, &dual.get(0)], |b, r, T| {
        let (keep, old, new) = (T::of(s.keep), T::of(s.old), T::of(s.new));
        let mut start = r.start;
        while start < r.end {
            let block = start..(start + BLOCK).min(r.end);
            // SAFETY: this chunk's range; row i of the contiguous `dual` starts i·P
            // elements after row 0.
            let (w, sum) = unsafe { (b.at(0, &block), b.at(1, &block)) };
            for (w, sum) in w.iter_mut().zip(sum.iter()) {
                *w = sum.mul_add(old, *w * keep);
            }
            for (i, &a) in alpha.iter().enumerate() {
                let a = T::of(a);
                let row = unsafe { b.offset(2, i * stride, &block) };
                if i == 0 {
                    for (sum, p) in sum.iter_mut().zip(row.iter()) {
                        *sum = *p * a;
                    }
                } else {
                    for (sum, p) in sum.iter_mut().zip(row.iter()) {
                        *sum = p.mul_add(a, *sum);
                    }
                }
            }
            for (w, sum) in w.iter_mut().zip(sum.iter()) {
                *w = sum.mul_add(new, *w);
            }
            start = block.end;
        }
    })
}

#[cfg(test)]
mod tests;
