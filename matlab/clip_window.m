function [rows, clip_mean, window, shape_power] = clip_window(X, column, faithful_window, file)
% CLIP_WINDOW  The peak window of a spike clip used to scale synthetic sources (see docs/deepsif.md).
%
%   [rows, clip_mean, window, shape_power] = clip_window(X, column, faithful_window, file)
%
% X        one clip as double (n_samples x n_regions), loaded from FILE (named in errors)
% column   1-based source column (the clip's own region + 1)
% The source waveform is normalised to its maximum; its peak sets the window max(peak-50,1):min(peak+50,n)
% (FAITHFUL_WINDOW: the original max(peak-50,0):max(peak+50,500), which fails near the clip edges).
% Returns the window rows X(window, :), the clip's column means (the clip is demeaned over all samples), the
% window indices and shape_power = sum over the window of the demeaned normalised waveform squared.
shape = X(:, column) / max(X(:, column));
[~, peak] = max(shape);
n = size(X, 1);
if faithful_window
    window = max(peak - 50, 0):max(peak + 50, 500);
    if window(1) < 1 || window(end) > n
        error('clip_window:window', ...
              ['clip %s: the original window max(peak-50,0):max(peak+50,500) = %d:%d leaves 1..%d ' ...
               '(peak at %d); run with faithful_window off'], file, window(1), window(end), n, peak);
    end
else
    window = max(peak - 50, 1):min(peak + 50, n);
end
rows = X(window, :);
clip_mean = mean(X, 1);
shape_dm = shape - mean(shape);
shape_power = sum(shape_dm(window) .^ 2);
end
