function generate_synthetic_source(params_file)
% GENERATE_SYNTHETIC_SOURCE  DeepSIF synthetic source table (bfinl/DeepSIF forward/generate_sythetic_source.m).
%
%   generate_synthetic_source(params_file)
%
% params_file is a MAT file (written by deepsif_assets.synthetic.generator) with:
%   inflated_file, region_mapping_file, leadfield_file, dis_matrix_file  anatomy files (centre, nbs, fwd,
%                                        raw_dis_matrix)
%   clips_root        folder holding a{r}/nmm_{k}.mat (variable data, 500 x n_regions)
%   output_file       <source_dir>/<train|test>_sample_source1.mat (written atomically: temp file + rename)
%   regions           1 x R  0-based centre regions, ascending (regions with clips)
%   clip_counts       1 x R  usable clips per region (nmm_1 .. nmm_n exist)
%   clip_offsets      1 x R  row of each region's first clip in the consolidated clip store
%   window_cached     1 x R  1: clips_root/clip_windows/a{r}.mat (write_clip_windows.m) covers the region's clips
%                            and is read instead of the clips (same numbers, not 2 MB read per clip)
%   nper, n_iter, n_sources, train, scale_snr, sensor_snr, faithful_window
%   point_05          half-magnitude distance (drawn once per dataset, as in the original)
%   u_growth, growth_offset  uniform numbers for patch growth; region r (1-based) consumes its draws in order
%                            from u_growth(growth_offset(r)+1 ...)
%   centre_perm       n_iter*(n_sources-1) x R  permutations of 1..R (centres of sources 2..n_sources)
%   u_candidate       (n_iter*R) x n_sources  uniform numbers choosing a candidate patch
%   u_clip            (4*n_iter*R) x n_sources  uniform numbers choosing a clip
% All random numbers come from the caller (NumPy, seeded), so MATLAB and Octave give the same file.
%
% Output variables (double): selected_region (N, n_sources, 70; 0-based, padded 15213), nmm_idx, random_samples
% (N, n_sources), current_snr and sensor_snr (N, 1), scale_ratio (N, n_sources, L), mag_change
% (N, n_sources, 70; padded 15213), plus point_05, sigma. N = 4 * n_iter * R; row s = rep + 4*(kk-1) +
% 4*n_iter*(ii-1) (centre ii outermost, then variation kk, then 4 copies with sensor SNR 5, 10, 15, 20 dB).
%
% Each clip is loaded once and projected once through the lead field: samples are grouped by clip.

NAN_NUMBER = 15213;
MAX_SIZE = 70;

t_start = tic;
p = load(params_file);
centre = double(load_var(char(p.inflated_file), 'centre'));
nbs = load_var(char(p.region_mapping_file), 'nbs');
fwd = double(load_var(char(p.leadfield_file), 'fwd'));
dis = double(load_var(char(p.dis_matrix_file), 'raw_dis_matrix'));
clips_root = char(p.clips_root);
output_file = char(p.output_file);

n_all = size(fwd, 2);
nbs = cellfun(@(x) double(x(:)'), nbs(:)', 'UniformOutput', false);
n_listed = cellfun(@numel, nbs);
adj = sparse([nbs{:}], repelem(1:numel(nbs), n_listed), 1, numel(nbs), numel(nbs));  % adj(j, i): j in nbs{i}
degree = n_listed(:);
if numel(nbs) ~= n_all || size(centre, 1) ~= n_all || any(size(dis) ~= n_all)
    error('generate_synthetic_source:anatomy', ...
          'anatomy sizes disagree: fwd has %d regions, nbs %d, centre %d, raw_dis_matrix %dx%d', ...
          n_all, numel(nbs), size(centre, 1), size(dis, 1), size(dis, 2));
end

regions = double(p.regions(:)');
clip_counts = double(p.clip_counts(:)');
clip_offsets = double(p.clip_offsets(:)');
window_cached = logical(p.window_cached(:)');
nper = double(p.nper);
n_iter = double(p.n_iter);
n_sources = double(p.n_sources);
train = logical(p.train);
faithful_window = logical(p.faithful_window);
scale_snr = double(p.scale_snr(:)');
sensor_snr = double(p.sensor_snr(:));
point_05 = double(p.point_05);
u_growth = double(p.u_growth(:));
growth_offset = double(p.growth_offset(:)');
centre_perm = double(p.centre_perm);
u_candidate = double(p.u_candidate);
u_clip = double(p.u_clip);

n_regions = numel(regions);
if n_regions == 0
    error('generate_synthetic_source:noregions', 'no centre regions given (no region has clips)');
end
if any(clip_counts < 1)
    error('generate_synthetic_source:noclips', 'every centre region needs at least one clip');
end
n_rep = numel(sensor_snr);
n_base = n_iter * n_regions;
N = n_rep * n_base;

%% Candidate patches of every centre region (region growing, as the original)
candidates = cell(n_regions, 1);
for ii = 1:n_regions
    r = regions(ii) + 1;
    candidates{ii} = grow_candidates(r, adj, degree, centre, u_growth, growth_offset(r), NAN_NUMBER, MAX_SIZE);
    if isempty(candidates{ii})
        error('generate_synthetic_source:patch', 'region %d has no neighbours in nbs: no candidate patch', r - 1);
    end
end

fprintf('generate_synthetic_source: candidate patches of %d regions in %.1f s\n', n_regions, toc(t_start));

%% Patch, centre and candidate of every (centre ii, variation kk): base row b = (ii-1)*n_iter + kk
sel_base = NAN_NUMBER * ones(n_base, n_sources, MAX_SIZE);
centre_pos = zeros(n_base, n_sources);                     % position of each source's centre in `regions`
for ii = 1:n_regions
    for kk = 1:n_iter
        b = (ii - 1) * n_iter + kk;
        tr = candidates{ii};
        n_cand = size(tr, 1);
        if train && kk <= n_cand
            ci = kk;                                       % train mode sweeps the candidates first
        else
            ci = floor(u_candidate(b, 1) * n_cand) + 1;
        end
        sel_base(b, 1, :) = reshape(tr(ci, :), 1, 1, MAX_SIZE);
        centre_pos(b, 1) = ii;
        for k = 2:n_sources
            jj = centre_perm(kk + n_iter * (k - 2), ii);
            tr = candidates{jj};
            ci = floor(u_candidate(b, k) * size(tr, 1)) + 1;
            sel_base(b, k, :) = reshape(tr(ci, :), 1, 1, MAX_SIZE);
            centre_pos(b, k) = jj;
        end
    end
end

%% Expand to the n_rep consecutive copies (sensor SNR levels)
row_base = reshape(repmat(1:n_base, n_rep, 1), [], 1);     % base row of every sample row
selected_region = sel_base(row_base, :, :);
current_snr = repmat(sensor_snr, n_base, 1);
row_centre_pos = centre_pos(row_base, :);
n_avail = min(nper, clip_counts(row_centre_pos));          % regions with fewer clips: only existing ones
n_avail = reshape(n_avail, N, n_sources);
random_samples = floor(u_clip .* n_avail) + 1;             % clip k of a{centre}/nmm_{k}.mat, 1-based
nmm_idx = reshape(clip_offsets(row_centre_pos), N, n_sources) + random_samples - 1;

%% In-patch magnitude decay
sigma = 0.8493 * point_05;
pad = sel_base == NAN_NUMBER;
ids = sel_base;
ids(pad) = 0;
centres3 = repmat(sel_base(:, :, 1), [1, 1, MAX_SIZE]);
d = dis(sub2ind(size(dis), centres3 + 1, ids + 1));
mag_base = exp(-d .^ 2 / (2 * sigma ^ 2));
mag_base(pad) = NAN_NUMBER;
mag_change = mag_base(row_base, :, :);

%% Scale ratios: group (row, source) pairs by clip; load and project each clip once
% For a pair with patch p and clip X (window rows W, demeaned over the clip): the signal is the unit
% waveform in every patch column, so Ps = |shape_dm(W)|^2 * |sum(fwd(:,p),2)|^2 / |W|; the noise is the
% clip outside the patch, A - Y_p with A = XW * fwd' (once per clip) and Y_p = XW(:,p) * fwd(:,p)' (small,
% per pair; cost linear in the number of pairs).
sel_flat = reshape(sel_base, n_base * n_sources, MAX_SIZE);   % row b + (k-1)*n_base: patch of (b, k)
snr_factor = 10 .^ (scale_snr / 10);
n_level = numel(scale_snr);
scale_ratio = zeros(N, n_sources, n_level);
level_stride = (0:n_level - 1) * N * n_sources;
clip_id = nmm_idx(:) + 1;
[sorted_id, order] = sort(clip_id);
starts = [1; find(diff(sorted_id)) + 1];
stops = [starts(2:end) - 1; numel(sorted_id)];
n_clips_used = numel(starts);
window_root = fullfile(clips_root, 'clip_windows');
cache_region = -1;
cache = [];
n_cached = 0;
for q = 1:n_clips_used
    members = order(starts(q):stops(q));                  % linear indices into (N, n_sources)
    first = members(1);
    s = mod(first - 1, N) + 1;
    k = floor((first - 1) / N) + 1;
    r = regions(row_centre_pos(s, k));
    clip_k = random_samples(s, k);
    if r ~= cache_region                                   % clips are grouped region by region
        cache = [];
        if window_cached(row_centre_pos(s, k)) && ~faithful_window
            cache = load_window_cache(fullfile(window_root, sprintf('a%d.mat', r)), r, ...
                                      clip_counts(row_centre_pos(s, k)), n_all);
        end
        cache_region = r;
    end
    if ~isempty(cache)
        n_w = cache.window_length(clip_k);
        XW = bsxfun(@minus, double(cache.window_rows(1:n_w, :, clip_k)), cache.clip_mean(clip_k, :));
        shape_power = cache.shape_power(clip_k);
        n_cached = n_cached + 1;
    else
        file = fullfile(clips_root, sprintf('a%d', r), sprintf('nmm_%d.mat', clip_k));
        [rows, clip_mean, W, shape_power] = clip_window(load_clip(file, n_all), r + 1, faithful_window, file);
        n_w = numel(W);
        XW = bsxfun(@minus, rows, clip_mean);              % demeaned over the whole clip, window rows
    end
    A = XW * fwd';                                         % all-channel projection of the window

    n_m = numel(members);
    m_rows = mod(members - 1, N) + 1;
    m_src = floor((members - 1) / N) + 1;
    patches = sel_flat(row_base(m_rows) + (m_src - 1) * n_base, :)';   % MAX_SIZE x n_m, padded
    valid = patches ~= NAN_NUMBER;
    cols = patches(valid) + 1;                             % concatenated patch columns, pair by pair
    n_in = sum(valid, 1);                                  % patch size of each pair
    last = cumsum(n_in);
    n_chan = size(fwd, 1);
    Fc = fwd(:, cols);                                     % n_chan x (sum of patch sizes)
    gg = zeros(1, n_m);
    Y = zeros(n_w, n_chan * n_m);                          % patch part of the window EEG, pair by pair
    for j = 1:n_m
        span = last(j) - n_in(j) + 1:last(j);
        gg(j) = sum(sum(Fc(:, span), 2) .^ 2);             % |sum(fwd(:,p),2)|^2
        Y(:, (j - 1) * n_chan + 1:j * n_chan) = XW(:, cols(span)) * Fc(:, span)';
    end
    E = repmat(A, 1, n_m) - Y;                             % noise EEG: the clip outside each patch
    Pn = sum(reshape(sum(E .^ 2, 1), n_chan, n_m), 1) / n_w;
    Ps = shape_power * gg / n_w;
    scale_ratio(bsxfun(@plus, members(:), level_stride)) = sqrt((Pn(:) ./ Ps(:)) * snr_factor);
    if mod(q, 2000) == 0
        fprintf('generate_synthetic_source: %d / %d clips\n', q, n_clips_used);
    end
end
fprintf('generate_synthetic_source: scale ratios from %d clips (%d from the window cache), %.1f s elapsed\n', ...
        n_clips_used, n_cached, toc(t_start));

%% Save atomically (save_atomic.m reads the file back: Octave leaves a truncated file on a full disk)
out_dir = fileparts(output_file);
if ~isempty(out_dir) && exist(out_dir, 'dir') ~= 7
    mkdir(out_dir);
end
save_atomic(output_file, struct('selected_region', selected_region, 'nmm_idx', nmm_idx, ...
            'random_samples', random_samples, 'current_snr', current_snr, 'sensor_snr', current_snr, ...
            'scale_ratio', scale_ratio, 'mag_change', mag_change, 'point_05', point_05, 'sigma', sigma), '-v7');
fprintf('generate_synthetic_source: wrote %s (N = %d, %d clips loaded) in %.1f s\n', output_file, N, ...
        n_clips_used, toc(t_start));
end


function value = load_var(file, name)
% One variable from a MAT file, with a clear error naming the file.
if exist(file, 'file') ~= 2
    error('generate_synthetic_source:missing', 'anatomy file %s is missing (needed for %s)', file, name);
end
s = load(file, name);
if ~isfield(s, name)
    error('generate_synthetic_source:variable', 'file %s has no variable %s', file, name);
end
value = s.(name);
end


function X = load_clip(file, n_all)
% One clip as double, checked.
if exist(file, 'file') ~= 2
    error('generate_synthetic_source:clip', 'clip file %s is missing', file);
end
s = load(file, 'data');
if ~isfield(s, 'data') || size(s.data, 2) ~= n_all
    error('generate_synthetic_source:clip', 'clip file %s must hold data with %d columns', file, n_all);
end
X = double(s.data);
end


function cache = load_window_cache(file, region, n_needed, n_all)
% The peak-window cache of one region (write_clip_windows.m), checked against the clips in use.
cache = load(file);
needed = {'region', 'n_clips', 'window_rows', 'window_length', 'clip_mean', 'shape_power'};
if ~all(isfield(cache, needed)) || double(cache.region) ~= region || double(cache.n_clips) < n_needed ...
        || size(cache.window_rows, 2) ~= n_all
    error('generate_synthetic_source:cache', ...
          'window cache %s does not describe clips 1..%d of region %d with %d columns', file, n_needed, ...
          region, n_all);
end
end


function rows = grow_candidates(r, adj, degree, centre, u, pos, NAN_NUMBER, MAX_SIZE)
% Two-layer and three-layer candidate patches around region r (1-based); rows are 0-based, padded.
% adj is the sparse neighbour matrix: adj(j, i) = 1 when j is in nbs{i} (column i lists region i's neighbours);
% degree(i) = numel(nbs{i}). Random numbers are consumed from u(pos+1 ...) in the original's draw order.
n_all = size(adj, 1);
nb1 = layer(adj, r, r);
nb2 = layer(adj, nb1, [r, nb1]);
to_all = unit_directions(centre(r, :), centre);            % unit direction from r to every region
v0 = to_all(nb1, :);
cos_theta = max(min(v0 * v0(1, :)', 1), -1);
angs = real(acosd(cos_theta));
[~, order] = sort(angs);
dirs = order(1:ceil(numel(angs) / 2));                     % growth directions (the first neighbour's included)
n_dir = numel(dirs);
align = cell(n_dir, 1);                                    % |u_j . v| for every region j, per direction
for k = 1:n_dir
    align{k} = abs(to_all * v0(dirs(k), :)');
end
rows = NAN_NUMBER * ones(10 * n_dir, MAX_SIZE);
row = 0;
for rep = 1:5                                              % two layers
    for k = 1:n_dir
        [pick, pos] = pick_aligned(align{k}(nb2), 0, u, pos);
        row = row + 1;
        rows(row, :) = padded_patch(adj, degree, [r, nb1, nb2(pick)], n_all, NAN_NUMBER, MAX_SIZE);
    end
end
for rep = 1:5                                              % three layers
    for k = 1:n_dir
        [pick, pos] = pick_aligned(align{k}(nb2), 0.1, u, pos);
        chosen2 = nb2(pick);
        nb3 = layer(adj, chosen2, [r, nb1, chosen2]);
        [pick3, pos] = pick_aligned(align{k}(nb3), -0.15, u, pos);
        row = row + 1;
        rows(row, :) = padded_patch(adj, degree, [r, nb1, chosen2, nb3(pick3)], n_all, NAN_NUMBER, MAX_SIZE);
    end
end
end


function [pick, pos] = pick_aligned(d, bias, u, pos)
% Pick each neighbour with probability minmax(|u_j . v|) + bias (NaN when all equal: none picked); one
% random number per neighbour, in order.
n = numel(d);
if n == 0
    pick = false(1, 0);
    return;
end
if pos + n > numel(u)
    error('generate_synthetic_source:random', 'the growth random stream is exhausted (%d numbers)', numel(u));
end
d = d(:);
prob = (d - min(d)) / (max(d) - min(d)) + bias;
pick = (u(pos + 1:pos + n) < prob)';
pos = pos + n;
end


function row = padded_patch(adj, degree, patch, n_all, NAN_NUMBER, MAX_SIZE)
% Smooth the patch (original order, added regions appended, removed ones dropped), 0-based ids, padded.
in_patch = zeros(n_all, 1);
in_patch(patch) = 1;
% Add: boundary regions (neighbours of the patch outside it) with at most one neighbour outside the patch.
inside = adj' * in_patch;                                  % how many of each region's neighbours are inside
boundary = (adj * in_patch) > 0 & in_patch == 0;
add_rg = find(boundary & inside > degree - 2)';
in_grown = in_patch;
in_grown(add_rg) = 1;
% Remove: members with exactly one neighbour inside patch + added (the original tests == 1, although its
% comment says "no neighbours").
inside_grown = adj' * in_grown;
removed = false(n_all, 1);
removed(patch(inside_grown(patch) == 1)) = true;
candidate = [patch, add_rg];
final = candidate(~removed(candidate));
if any(removed)
    % Deliberate fix: a removal can cut the patch (the real nbs has one-way links, e.g. 441 -> 3), leaving
    % islands; keep the part connected to the centre through nbs (either direction).
    member = false(n_all, 1);
    member(final) = true;
    reach = false(n_all, 1);
    reach(patch(1)) = true;
    grown = true;
    while grown
        next = reach | (((adj * reach) > 0 | (adj' * reach) > 0) & member);
        grown = any(next ~= reach);
        reach = next;
    end
    final = final(reach(final));
end
final = final - 1;
if numel(final) > MAX_SIZE
    error('generate_synthetic_source:patch', 'patch around region %d has %d regions (more than %d)', ...
          patch(1) - 1, numel(final), MAX_SIZE);
end
row = [final, NAN_NUMBER * ones(1, MAX_SIZE - numel(final))];
end


function v = unit_directions(a, b)
% Unit vectors from point a (1x3) to every row of b.
v = bsxfun(@minus, b, a);
v = bsxfun(@rdivide, v, sqrt(sum(v .^ 2, 2)));
end


function rg = layer(adj, centres, prev_layers)
% Ascending union of the neighbours of `centres`, minus `prev_layers` (the original's find_nb_rg; 1-based).
member = zeros(size(adj, 1), 1);
member(centres) = 1;
hit = (adj * member) > 0;
hit(prev_layers) = false;
rg = find(hit)';
end
