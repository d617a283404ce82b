function synth_original_cost(source_file, clips_root, leadfield_file, n_pairs, result_file)
% SYNTH_ORIGINAL_COST  Time the original per-sample scale_ratio path on a sample of (row, source) pairs.
%
%   synth_original_cost(source_file, clips_root, leadfield_file, n_pairs, result_file)
%
% For n_pairs evenly spaced (row, source) pairs of source_file (a <mode>_sample_source1.mat), do what the
% original generate_sythetic_source.m did per sample: load the clip file again, set the patch columns to the
% normalised waveform, project the patch and the rest through fwd (two 75 x n x 500 products) and form
% Ps, Pn over the (fixed) peak window. Saves seconds_per_pair and the recomputed scale ratios (for a check
% against the file) to result_file (-v7). Benchmark helper only.
gt = load(source_file);
fwd = double(getfield(load(leadfield_file, 'fwd'), 'fwd'));
[N, n_sources, n_level] = size(gt.scale_ratio);
if n_level == 6
    target_snr = 10:2:20;
else
    target_snr = [10, 15];
end
pairs = round(linspace(1, N * n_sources, n_pairs));
alpha = zeros(n_pairs, n_level);
tic;
for q = 1:n_pairs
    s = mod(pairs(q) - 1, N) + 1;
    k = floor((pairs(q) - 1) / N) + 1;
    a = reshape(gt.selected_region(s, k, :), [], 1);
    a(a > 1000) = [];
    region_id = a + 1;
    file = fullfile(clips_root, sprintf('a%d', region_id(1) - 1), sprintf('nmm_%d.mat', gt.random_samples(s, k)));
    clip = load(file);
    data = double(clip.data);
    shape = data(:, region_id(1)) / max(data(:, region_id(1)));
    [~, peak] = max(shape);
    data(:, region_id) = repmat(shape, 1, numel(region_id));
    spike_ind = max(peak - 50, 1):min(peak + 50, size(data, 1));
    sig_eeg = (fwd(:, region_id) * data(:, region_id)')';
    sig_eeg = bsxfun(@minus, sig_eeg, mean(sig_eeg, 1));
    dd = 1:size(data, 2);
    dd(region_id) = [];
    noise_eeg = (fwd(:, dd) * data(:, dd)')';
    noise_eeg = bsxfun(@minus, noise_eeg, mean(noise_eeg, 1));
    Ps = norm(sig_eeg(spike_ind, :), 'fro') ^ 2 / numel(spike_ind);
    Pn = norm(noise_eeg(spike_ind, :), 'fro') ^ 2 / numel(spike_ind);
    alpha(q, :) = sqrt(10 .^ (target_snr / 10) * Pn / Ps);
end
seconds_per_pair = toc / n_pairs;
expected = zeros(n_pairs, n_level);
for q = 1:n_pairs
    s = mod(pairs(q) - 1, N) + 1;
    k = floor((pairs(q) - 1) / N) + 1;
    expected(q, :) = reshape(gt.scale_ratio(s, k, :), 1, []);
end
max_rel_diff = max(abs(alpha(:) - expected(:)) ./ abs(expected(:)));
save(result_file, '-v7', 'seconds_per_pair', 'alpha', 'expected', 'max_rel_diff', 'pairs');
end
