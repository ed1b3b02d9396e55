// SumRows4 for every Highway target: included inside a dispatched file's per-target anonymous
// namespace, after its `hn`, DF (ScalableTag<float>) and VF. Shared by the matrix products
// (matmul_simd.cc) and the latent attention (latent_attention.cc), whose dot products both
// end in four horizontal sums at a time.

// out[r] = the sum of v[r]'s lanes for 4 vectors at once: pairs of rows interleaved and added
// twice (every 128-bit block then holds one partial sum per row), then the blocks folded. 15
// shuffles and adds for AVX-512's 4 rows instead of 4 full horizontal sums: with 256 columns a
// row's dot is only 16 multiply-adds, so per-output horizontal sums cost as much as the dot.
#if HWY_TARGET == HWY_SCALAR
HWY_INLINE void SumRows4(DF df, const VF (&v)[4], float* out) {
  for (int r = 0; r < 4; ++r) out[r] = hn::GetLane(hn::SumOfLanes(df, v[r]));
}
#else
template <class D>
HWY_INLINE auto FoldToBlock(D d, hn::Vec<D> v) {
  if constexpr (hn::MaxLanes(d) * sizeof(float) > 16) {
    const hn::Half<D> dh;
    return FoldToBlock(dh, hn::Add(hn::LowerHalf(dh, v), hn::UpperHalf(dh, v)));
  } else {
    return v;
  }
}
HWY_INLINE void SumRows4(DF df, const VF (&v)[4], float* out) {
  const hn::Repartition<uint64_t, DF> d64;
  // Per 128-bit block: [v0 + v0', v1 + v1', ...] lanes (0,2) and (1,3) of each pair summed.
  const VF s01 = hn::Add(hn::InterleaveLower(df, v[0], v[1]), hn::InterleaveUpper(df, v[0], v[1]));
  const VF s23 = hn::Add(hn::InterleaveLower(df, v[2], v[3]), hn::InterleaveUpper(df, v[2], v[3]));
  const auto a = hn::BitCast(d64, s01), b = hn::BitCast(d64, s23);
  const VF block_sums = hn::Add(hn::BitCast(df, hn::InterleaveLower(d64, a, b)),
                                hn::BitCast(df, hn::InterleaveUpper(d64, a, b)));
  const auto folded = FoldToBlock(df, block_sums);  // 4 lanes: the rows' totals
  hn::StoreU(folded, hn::DFromV<decltype(folded)>(), out);
}
#endif
