"""DeepSIF synthetic sources (``generate_sythetic_source.m``): patches, clip indices, SNRs, scale ratios, decay."""
