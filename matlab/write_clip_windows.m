function n_clips = write_clip_windows(clip_dir, region, n_clips, target, known)
% WRITE_CLIP_WINDOWS  Cache the peak windows of one region's clips for the synthetic-source step.
%
%   n_clips = write_clip_windows(clip_dir, region, n_clips, target)
%   n_clips = write_clip_windows(clip_dir, region, n_clips, target, known)
%
% KNOWN (optional cell array, by clip number): known{k}, when present and not empty, is clip k's window already
% computed from the clip in memory (struct with fields rows, clip_mean, window, shape_power: the outputs of
% clip_window.m for the clip's data as saved); other clips are loaded from CLIP_DIR.
%
% Reads CLIP_DIR/nmm_1.mat ... nmm_<n_clips>.mat (variable data, 500 x n_regions single) of 0-based REGION and
% writes TARGET (uncompressed MAT -v6, atomically) with, for clip k:
%   window_rows(1:window_length(k), :, k)   single   the clip rows of the fixed peak window (clip_window.m)
%   window_start(k), window_length(k)                first row (1-based) and length of the window
%   clip_mean(k, :)                          double   column means of the whole clip
%   shape_power(k)                           double   see clip_window.m
% plus region and n_clips. generate_synthetic_source.m reads this instead of every 2 MB clip; the values
% it derives are bit-identical to loading the clips. The window is at most 101 rows, a fifth of the clip.
if n_clips < 1
    return;
end
if nargin < 5
    known = {};
end
column = double(region) + 1;
rows_all = [];
window_start = zeros(1, n_clips);
window_length = zeros(1, n_clips);
shape_power = zeros(1, n_clips);
clip_mean = [];
for k = 1:n_clips
    if k <= numel(known) && ~isempty(known{k})
        rows = known{k}.rows;
        means = known{k}.clip_mean;
        window = known{k}.window;
        power = known{k}.shape_power;
    else
        file = fullfile(clip_dir, sprintf('nmm_%d.mat', k));
        s = load(file, 'data');
        if ~isfield(s, 'data')
            error('write_clip_windows:clip', 'clip file %s has no variable data', file);
        end
        [rows, means, window, power] = clip_window(double(s.data), column, false, file);
    end
    if k == 1
        rows_all = zeros(101, size(rows, 2), n_clips, 'single');
        clip_mean = zeros(n_clips, size(rows, 2));
    end
    rows_all(1:numel(window), :, k) = single(rows);
    clip_mean(k, :) = means;
    window_start(k) = window(1);
    window_length(k) = numel(window);
    shape_power(k) = power;
end
cache = struct('region', double(region), 'n_clips', n_clips, 'window_rows', rows_all, ...
               'window_start', window_start, 'window_length', window_length, 'clip_mean', clip_mean, ...
               'shape_power', shape_power);
folder = fileparts(target);
if ~isempty(folder)
    ensure_dir(folder);                             % race-free: regions extracted at once share this folder
end
save_atomic(target, cache, '-v6');
end
