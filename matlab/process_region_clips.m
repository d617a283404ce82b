function summary = process_region_clips(region, source_dir, leadfield_file, filename, opts)
% PROCESS_REGION_CLIPS  Spike-clip extraction for ONE cortical region (all iterations).
%
%   summary = process_region_clips(region, source_dir, leadfield_file, filename, opts)
%
% The algorithm of DeepSIF's forward/process_raw_nmm.m (see docs/deepsif.md) for region REGION
% (0-based fs region id), with its defects fixed:
%   - raw segments are read in NUMERIC order (opts.lexicographic_segment_order = true: original order);
%   - paths are built with fullfile; markers are saved with -v7, clips uncompressed with -v6 (the same values;
%     ~35x faster to write and ~30x faster to read than -v7) unless opts.compress_clips asks for -v7;
%   - local maxima by a vectorised neighbour comparison (Octave has no islocalmax);
%   - clip numbers continue from the previous iteration's marker num_spike (never a per-call counter);
%   - an iteration without kept spikes (including a lone spike rejected by rule 2) gives zero clips AND a marker;
%   - a missing iteration is an error that names the missing files;
%   - clips and markers are written atomically (save_atomic.m: temp file, checked, rename), and the marker of
%     an iteration only after all its clips; a clip's check reads its MAT framing (complete to the last byte),
%     a marker is read back;
%   - at the end, the clips' peak windows are cached in nmm_<filename>/clip_windows/a<region>.mat
%     (write_clip_windows.m) so the synthetic-source step need not inflate every clip again; the windows of the
%     clips written by this call come from memory, only clips of skipped iterations are loaded again;
%   - folders are created race-free (ensure_dir.m): regions extracted at once share nmm_<filename>/ and its
%     subfolders.
%
% Inputs
%   region          0-based fs region id (folder a<region>)
%   source_dir      output root: reads raw_nmm/a<region>/, writes nmm_<filename>/
%   leadfield_file  MAT file with variable fwd (n_electrodes x n_fs_regions)
%   filename        clip folder suffix (nmm_<filename>), default 'spikes'
%   opts            struct of named constants (see clip_options below); missing fields take the defaults
%
% Output (also recorded in the markers on disk)
%   summary.clips_per_iteration  1 x n_iter clips written per iteration
%   summary.num_spike            cumulative clip count after the last iteration
%   summary.iterations           the iterations, in processing order

if nargin < 4 || isempty(filename)
    filename = 'spikes';
end
if nargin < 5
    opts = struct();
end
opts = clip_options(opts);
clip_format = '-v6';
if opts.compress_clips
    clip_format = '-v7';
end
region = double(region);
t_total = tic;

% ---- inputs ---------------------------------------------------------------------------------------------------
if ~(isscalar(region) && region >= 0 && region == fix(region))
    error('process_region_clips:badRegion', 'region must be a non-negative integer, got %s', mat2str(region));
end
if ~isfile(leadfield_file)
    error('process_region_clips:missingLeadfield', 'lead field file %s does not exist', leadfield_file);
end
headmodel = load(leadfield_file);
if ~isfield(headmodel, 'fwd')
    error('process_region_clips:badLeadfield', 'lead field file %s has no variable fwd', leadfield_file);
end
fwd = double(headmodel.fwd);
if ndims(fwd) ~= 2 || size(fwd, 2) ~= opts.n_fs_regions
    error('process_region_clips:badLeadfield', ...
          'lead field fwd in %s is %s; expected n_electrodes x %d (one column per fs region)', ...
          leadfield_file, mat2str(size(fwd)), opts.n_fs_regions);
end
if region >= opts.n_fs_regions
    error('process_region_clips:badRegion', 'region %d is out of range: expected 0 <= region < %d', ...
          region, opts.n_fs_regions);
end
src = region + 1;                                           % 1-based source column

raw_dir = fullfile(source_dir, 'raw_nmm', sprintf('a%d', region));
out_root = fullfile(source_dir, ['nmm_' filename]);
clip_dir = fullfile(out_root, sprintf('a%d', region));
ensure_dir(clip_dir);
% The peak-window cache of the synthetic step describes the finished clip set: drop it while clips may change.
window_file = fullfile(out_root, 'clip_windows', sprintf('a%d.mat', region));
if isfile(window_file)
    delete(window_file);
end

iterations = opts.iterations;
clips_per_iteration = zeros(1, numel(iterations));
num_spike = 0;
windows = cell(1, 0);                               % peak windows of the clips written here, by clip number
for j = 1:numel(iterations)
    iter = iterations(j);
    t_iter = tic;
    marker_dir = fullfile(out_root, 'clip_info', sprintf('iter%d', iter));
    ensure_dir(marker_dir);
    marker_file = fullfile(marker_dir, sprintf('iter_%d_i_%d.mat', iter, region));

    % Clip numbering continues from the previous iteration's marker (fixes the per-call counter bug).
    if j == 1
        offset = 0;
    else
        prev_iter = iterations(j - 1);
        prev_marker = fullfile(out_root, 'clip_info', sprintf('iter%d', prev_iter), ...
                               sprintf('iter_%d_i_%d.mat', prev_iter, region));
        if ~isfile(prev_marker)
            error('process_region_clips:missingMarker', ...
                  'marker %s of the previous iteration is missing: cannot number the clips of iteration %d', ...
                  prev_marker, iter);
        end
        prev = load(prev_marker);
        offset = double(prev.num_spike);
    end

    if opts.skip_done_iterations && isfile(marker_file)
        done = load(marker_file);
        clips_per_iteration(j) = double(done.num_spike) - offset;
        num_spike = double(done.num_spike);
        log_line(opts, 'region %d iter %d: marker exists (%d clips), skipped', region, iter, clips_per_iteration(j));
        continue;
    end

    % ---- load: transient drop, decimation, 998 -> 994 remap -------------------------------
    nmm = load_downsampled(raw_dir, iter, region, opts);
    n = size(nmm, 1);
    log_line(opts, 'region %d iter %d: %d x %d samples loaded (%.1f s)', region, iter, n, size(nmm, 2), toc(t_iter));

    % ---- detect and select ----------------------------------------------------------
    [spike_time, spike_chan] = find_spike_time(nmm, opts);
    spike_time = select_spikes(spike_time, spike_chan, src, n, opts);
    n_keep = numel(spike_time);

    % ---- scale to the target sensor SNR, rescale the waveform, cut clips -------------
    if n_keep > 0
        alpha = find_alpha(nmm, fwd, src, spike_time, opts);
        source = single(rescale_source_column(double(nmm(:, src)), spike_time, alpha, opts));
        starts = block_start(spike_time, opts);
        previous = struct('start', NaN, 'data', [], 'file', '');
        for s = 1:n_keep
            rows = starts(s):(starts(s) + opts.clip_length - 1);
            data = nmm(rows, :);
            data(:, src) = source(rows);
            clip_file = fullfile(clip_dir, sprintf('nmm_%d.mat', offset + s));
            % Two spikes in one block give the same clip: its file is copied, not saved again.
            same = starts(s) == previous.start && isequaln(data, previous.data);
            if same
                save_atomic(clip_file, struct('data', data), clip_format, 'structure', previous.file);
                windows{offset + s} = windows{offset + s - 1};
            else
                save_atomic(clip_file, struct('data', data), clip_format, 'structure');
                windows{offset + s} = peak_window(data, src, clip_file);
            end
            previous = struct('start', starts(s), 'data', data, 'file', clip_file);
        end
    else
        alpha = NaN;
    end

    num_spike = offset + n_keep;
    clips_per_iteration(j) = n_keep;
    marker = struct('num_spike', num_spike, 'spike_time', reshape(spike_time, 1, []));
    save_atomic(marker_file, marker);
    log_line(opts, 'region %d iter %d: %d peaks, %d clips kept (alpha %.4g), %.2f s', region, iter, ...
             numel(spike_chan), n_keep, alpha, toc(t_iter));
    log_line(opts, 'iter_%d_i_%d is done', iter, region);
    clear nmm;
end

write_clip_windows(clip_dir, region, num_spike, window_file, windows);
log_line(opts, 'region %d: %d clip windows cached in %s', region, num_spike, window_file);

summary = struct('clips_per_iteration', clips_per_iteration, 'num_spike', num_spike, ...
                 'iterations', iterations, 'seconds', toc(t_total));
end


% ================================ helpers =====================================================================
function opts = clip_options(opts)
% Every sample-count constant of the original as a named option (dt = 0.5 ms defaults).
defaults = struct( ...
    'iterations', [0 1 2], ...
    'n_fs_regions', 994, ...
    'transient_samples', 1000, ...        % raw samples dropped at the start of each iteration
    'downsample_factor', 4, ...           % 2 kHz -> 500 Hz, keeps rows 1, 5, 9, ...
    'remap_fs', [8 326 922 950], ...      % 1-based fs columns filled from ...
    'remap_tvb', [995 998 997 996], ...   % ... these 1-based TVB columns
    'lexicographic_segment_order', false, ...
    'expected_segments', 0, ...           % > 0: exactly this many raw segment files per iteration
    'threshold_mv', 8, ...                % values below are not spikes
    'min_peak_separation', 100, ...       % keep a peak only > this many samples after the previous one
    'edge_before', 249, ...               % keep t only if t - edge_before > 0 ...
    'edge_after', 250, ...                % ... and t + edge_after < n
    'clip_length', 500, ...
    'rule2_before', 200, ...              % rule 2 window: [start - rule2_before, start - rule2_before + rule2_window - 1]
    'rule2_window', 900, ...
    'snr_before', 99, ...                 % SNR rows: t - snr_before ... t + snr_after (200 samples)
    'snr_after', 100, ...
    'target_snr_db', 15, ...
    'rescale_lo', 50, ...                 % near-zero search range inside the 500-sample window
    'rescale_hi', 450, ...
    'trough_lo', 301, ...                 % trough search range sig(trough_lo:trough_hi) ...
    'trough_hi', 400, ...
    'faithful_trough_offset', true, ...   % ... min_ind = argmin + trough_lo (one beyond, as the original)
    'thre_start', 0.1, ...
    'thre_step', 0.05, ...
    'fix_block_start', true, ...          % block start floor((t-1)/L)*L+1 keeps a peak at t = k*L inside its clip
    'compress_clips', false, ...          % true: clips saved -v7 (compressed) instead of -v6
    'skip_done_iterations', true, ...
    'verbose', true);
names = fieldnames(defaults);
for k = 1:numel(names)
    name = names{k};
    if ~isfield(opts, name) || isempty(opts.(name))
        opts.(name) = defaults.(name);
    elseif iscell(opts.(name))
        opts.(name) = cell2mat(opts.(name));
    end
end
unknown = setdiff(fieldnames(opts), names);
if ~isempty(unknown)
    error('process_region_clips:badOption', 'unknown option(s): %s', strjoin(unknown', ', '));
end
numeric = setdiff(names, {'lexicographic_segment_order', 'faithful_trough_offset', 'fix_block_start', ...
                          'compress_clips', 'skip_done_iterations', 'verbose'});
for k = 1:numel(numeric)
    opts.(numeric{k}) = double(opts.(numeric{k}));
end
opts.iterations = reshape(opts.iterations, 1, []);
if numel(opts.remap_fs) ~= numel(opts.remap_tvb)
    error('process_region_clips:badOption', 'remap_fs and remap_tvb must have the same length');
end
end


function log_line(opts, varargin)
if opts.verbose
    fprintf('[process_region_clips] %s\n', sprintf(varargin{:}));
end
end


function nmm = load_downsampled(raw_dir, iter, region, opts)
% The decimated, remapped series (n_ds x n_fs single) of one iteration: the _ds.mat cache if present, else the raw
% segments (transient dropped, every downsample_factor-th row kept, columns remapped).
prefix = fullfile(raw_dir, sprintf('mean_iter_%d_a_iter_%d', iter, region));
ds_file = [prefix '_ds.mat'];
if isfile(ds_file)
    cache = load(ds_file, 'all_data');
    if ~isfield(cache, 'all_data')
        error('process_region_clips:badRaw', 'downsampled file %s has no variable all_data', ds_file);
    end
    nmm = single(cache.all_data);
    if size(nmm, 2) ~= opts.n_fs_regions
        error('process_region_clips:badRaw', '%s: all_data is %s; expected n_samples x %d', ds_file, ...
              mat2str(size(nmm)), opts.n_fs_regions);
    end
    return;
end

files = segment_files(raw_dir, iter, region, opts);
factor = opts.downsample_factor;
chunks = cell(1, numel(files));
consumed = 0;                                       % raw rows before this segment
n_cols = 0;
for k = 1:numel(files)
    seg = load(files{k}, 'data');
    if ~isfield(seg, 'data')
        error('process_region_clips:badRaw', 'raw segment %s has no variable data', files{k});
    end
    rows = size(seg.data, 1);
    if k == 1
        n_cols = size(seg.data, 2);
        if n_cols < max([opts.n_fs_regions, opts.remap_tvb])
            error('process_region_clips:badRaw', '%s: data has %d columns; expected >= %d TVB nodes', ...
                  files{k}, n_cols, max([opts.n_fs_regions, opts.remap_tvb]));
        end
    elseif size(seg.data, 2) ~= n_cols
        error('process_region_clips:badRaw', '%s: data has %d columns, the first segment %d', ...
              files{k}, size(seg.data, 2), n_cols);
    end
    % Global 1-based row g is kept iff g > transient and mod(g - transient - 1, factor) == 0, which is
    % downsample(x(transient+1:end, :), factor) applied to the concatenation, done per segment.
    first = opts.transient_samples + 1;
    if consumed + rows >= first
        g0 = max(first, consumed + 1);
        g0 = g0 + mod(factor - mod(g0 - first, factor), factor);
        local = (g0 - consumed):factor:rows;
        chunks{k} = single(seg.data(local, :));
    end
    consumed = consumed + rows;
    clear seg;
end
nmm = vertcat(chunks{:});
clear chunks;
if isempty(nmm)
    error('process_region_clips:badRaw', 'iteration %d of region %d has only %d raw samples (transient %d)', ...
          iter, region, consumed, opts.transient_samples);
end
nmm(:, opts.remap_fs) = nmm(:, opts.remap_tvb);
nmm = nmm(:, 1:opts.n_fs_regions);
end


function files = segment_files(raw_dir, iter, region, opts)
% Raw segment files mean_iter_<iter>_a_iter_<region>_<k>.mat, numerically ordered and contiguous from 0.
stem = sprintf('mean_iter_%d_a_iter_%d_', iter, region);
listing = dir(fullfile(raw_dir, [stem '*.mat']));
names = {listing.name};
seg_ids = zeros(1, 0);
kept = {};
for k = 1:numel(names)
    token = regexp(names{k}, ['^' stem '(\d+)\.mat$'], 'tokens', 'once');
    if ~isempty(token)
        seg_ids(end + 1) = str2double(token{1}); %#ok<AGROW>
        kept{end + 1} = names{k}; %#ok<AGROW>
    end
end
if isempty(kept)
    error('process_region_clips:missingRaw', ...
          'no raw data for iteration %d of region %d: neither %s nor %s*.mat exists', iter, region, ...
          fullfile(raw_dir, sprintf('mean_iter_%d_a_iter_%d_ds.mat', iter, region)), fullfile(raw_dir, stem));
end
if ~isequal(sort(seg_ids), 0:numel(seg_ids) - 1)
    error('process_region_clips:missingRaw', 'raw segments of iteration %d in %s are not 0..%d: found %s', ...
          iter, raw_dir, numel(seg_ids) - 1, mat2str(sort(seg_ids)));
end
if opts.expected_segments > 0 && numel(seg_ids) ~= opts.expected_segments
    error('process_region_clips:missingRaw', '%s: %d raw segments for iteration %d, expected %d', ...
          raw_dir, numel(seg_ids), iter, opts.expected_segments);
end
if opts.lexicographic_segment_order
    order_names = sort(kept);                      % the original's dir() order: 0, 1, 10, 11, ..., 2, ...
else
    [~, order] = sort(seg_ids);
    order_names = kept(order);
end
files = cellfun(@(name) fullfile(raw_dir, name), order_names, 'UniformOutput', false);
end


function [spike_time, spike_chan] = find_spike_time(nmm, opts)
% Peaks >= threshold that are strict local maxima in time; stable-sorted by time (lower channel first), then the
% edge rule and the separation rule over the full sorted list.
% The rule: values below the threshold become 0, then a peak is a sample greater than both its neighbours in
% time. With a positive threshold every thresholded value is 0 or >= threshold, so a peak is a sample >= threshold;
% those few samples are found through the maxima of short runs of the series and tested against their
% thresholded neighbours. The peaks, and their order (column-major, then a stable sort by time), are those of the
% dense test of every sample (still used for a non-positive threshold).
n = size(nmm, 1);
thr = opts.threshold_mv;
if n < 3                                            % no sample has two neighbours
    idx = zeros(0, 1);
elseif thr > 0
    idx = samples_at_least(nmm, thr);
    t = mod(idx - 1, n) + 1;
    idx = idx(t >= 2 & t <= n - 1);                 % the neighbours idx -/+ 1 are in the same column
    mid = nmm(idx);
    before = nmm(idx - 1);
    before(before < thr) = 0;
    after = nmm(idx + 1);
    after(after < thr) = 0;
    idx = idx(mid > before & mid > after);
else
    idx = dense_peaks(nmm, thr);
end
t = mod(idx - 1, n) + 1;
c = floor((idx - 1) / n) + 1;
[t, order] = sort(t);                               % sort is stable in MATLAB and Octave
c = c(order);
separated = [true; diff(t) > opts.min_peak_separation];
use = (t - opts.edge_before > 0) & (t + opts.edge_after < n) & separated(1:numel(t));
spike_time = reshape(t(use), 1, []);
spike_chan = reshape(c(use), 1, []);
end


function idx = samples_at_least(nmm, thr)
% Linear indices (ascending, a column) of the samples >= thr. The series is read once, as the maxima of runs of
% `run` consecutive samples (a reshape shares the data, no copy); only runs whose maximum reaches thr are read again.
total = numel(nmm);
run = run_length(total, size(nmm, 1));
hot = find(max(reshape(nmm, run, []), [], 1) >= thr);
idx = reshape((1:run)', [], 1) + reshape((hot - 1) * run, 1, []);
idx = idx(:);
idx = idx(nmm(idx) >= thr);
end


function run = run_length(total, n_rows)
% A divisor of total near 256 (short runs: few samples to read again around each peak); else n_rows (one run per
% column, always a divisor).
run = n_rows;
for d = [256:-1:64, 257:4096]
    if mod(total, d) == 0
        run = d;
        return;
    end
end
end


function idx = dense_peaks(nmm, thr)
% Linear indices (ascending) of the peaks by the dense test: threshold a block of columns, compare every sample
% with both neighbours. Only columns that reach the threshold can hold one (below it everywhere: all zeros).
n = size(nmm, 1);
active = find(max(nmm, [], 1) >= thr);
block = 128;                                        % columns per pass: bounds the temporary arrays
parts = cell(1, 0);
for b0 = 1:block:numel(active)
    cols = active(b0:min(b0 + block - 1, numel(active)));
    x = nmm(:, cols);
    x(x < thr) = 0;
    is_max = false(size(x));
    mid = x(2:end - 1, :);
    is_max(2:end - 1, :) = mid > x(1:end - 2, :) & mid > x(3:end, :);
    [t, c] = find(is_max);
    parts{end + 1} = reshape(t + (reshape(cols(c), [], 1) - 1) * n, [], 1); %#ok<AGROW>
end
idx = vertcat(parts{:}, zeros(0, 1));
end


function starts = block_start(spike_time, opts)
L = opts.clip_length;
if opts.fix_block_start
    starts = floor((spike_time - 1) / L) * L + 1;    % t = k*L stays inside its clip (at position L)
else
    starts = floor(spike_time / L) * L + 1;          % original: t = k*L starts the next block
end
end


function kept = select_spikes(spike_time, spike_chan, src, n, opts)
% rule 1: the peak is on the source channel; rule 2: no surviving peak of another channel in the window around
% the clip; plus the aligned clip must end inside the series (the original would index past the end).
is_src = (spike_chan == src);
candidates = spike_time(is_src);
others = spike_time(~is_src);
starts = block_start(candidates, opts);
keep = true(1, numel(candidates));
for s = 1:numel(candidates)
    lo = starts(s) - opts.rule2_before;
    hi = lo + opts.rule2_window - 1;
    keep(s) = ~any(others >= lo & others <= hi) && (starts(s) + opts.clip_length - 1 <= n);
end
kept = reshape(candidates(keep), 1, []);
end


function alpha = find_alpha(nmm, fwd, src, spike_time, opts)
% alpha = sqrt(10^(SNR/10) * Pn / Ps) over the rows t-99 .. t+100 of every kept spike (duplicates kept). The
% demeaned sensor signals are projected only at those rows: the demeaned projection equals the projection of the
% demeaned sources, so the means come from the whole series.
n = size(nmm, 1);
offsets = (-opts.snr_before:opts.snr_after)';
rows = offsets + reshape(spike_time, 1, []);
rows = min(max(rows(:), 1), n);
means = column_means(nmm);
x = double(nmm(rows, :)) - means;
others = [1:src - 1, src + 1:size(nmm, 2)];
sig_eeg = x(:, src) * fwd(:, src)';
noise_eeg = x(:, others) * fwd(:, others)';
ps = sum(sig_eeg(:) .^ 2) / numel(rows);
pn = sum(noise_eeg(:) .^ 2) / numel(rows);
alpha = sqrt(10 ^ (opts.target_snr_db / 10) * pn / ps);
end


function source = rescale_source_column(source, spike_time, alpha, opts)
% Multiply each spike (last near-zero sample before the peak .. first near-zero sample after the trough) of the
% demeaned source channel by alpha; spikes in order, later windows see earlier rescaling.
mu = mean(source);
x = source - mu;
peak = opts.edge_before + 1;                        % peak index inside the window
for s = 1:numel(spike_time)
    rows = (spike_time(s) - opts.edge_before):(spike_time(s) + opts.edge_after);
    sig = x(rows);
    thre = opts.thre_start;
    small = near_zero(sig, thre, opts);
    before = find(small < peak);
    while isempty(before)
        thre = thre + opts.thre_step;
        small = near_zero(sig, thre, opts);
        before = find(small < peak);
    end
    start_sig = small(before(end));
    [~, min_ind] = min(sig(opts.trough_lo:opts.trough_hi));
    if opts.faithful_trough_offset
        min_ind = min_ind + opts.trough_lo;          % one beyond the true argmin, as the original
    else
        min_ind = min_ind + opts.trough_lo - 1;
    end
    after = find(small > min_ind);
    while isempty(after)
        thre = thre + opts.thre_step;
        small = near_zero(sig, thre, opts);
        after = find(small > min_ind);
    end
    end_sig = small(after(1));
    sig(start_sig:end_sig) = sig(start_sig:end_sig) * alpha;
    x(rows) = sig;
end
source = x + mu;
end


function entry = peak_window(data, src, clip_file)
% The clip's peak window for the cache of write_clip_windows.m, from the clip in memory (the values saved in
% clip_file): the cache need not load the clips written by this call again.
[rows, clip_mean, window, shape_power] = clip_window(double(data), src, false, clip_file);
entry = struct('rows', single(rows), 'clip_mean', clip_mean, 'window', window, 'shape_power', shape_power);
end


function means = column_means(nmm)
% Column means accumulated in double without a double copy of the series: sum(..., 'double') adds the same values
% in the same order as sum(double(...)), so the means are those of mean(double(nmm), 1).
means = sum(nmm, 1, 'double') / size(nmm, 1);
end


function idx = near_zero(sig, thre, opts)
idx = find(abs(sig) < thre);
idx = idx(idx >= opts.rescale_lo & idx <= opts.rescale_hi);
end
