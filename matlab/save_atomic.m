function save_atomic(target, variables, format)
% SAVE_ATOMIC  Save the fields of struct VARIABLES to TARGET via a temporary file, then rename.
%
%   save_atomic(target, variables)            MAT -v7 (the clip contract)
%   save_atomic(target, variables, '-v6')     uncompressed MAT (derived caches read many times)
%
% The temporary file (.partial_<name>) lives in the target's folder, so the rename is atomic on one file system.
% Octave's save does not fail on a full disk: it leaves a truncated file. The file is therefore read back and
% compared before it is published; on any failure the temporary file is removed and an error names TARGET.
if nargin < 3 || isempty(format)
    format = '-v7';
end
[folder, name, ext] = fileparts(target);
tmp = fullfile(folder, ['.partial_' name ext]);
try
    save(tmp, '-struct', 'variables', format);
    back = load(tmp);
    fields = fieldnames(variables);
    for f = 1:numel(fields)
        if ~isfield(back, fields{f}) || ~isequaln(back.(fields{f}), variables.(fields{f}))
            error('save_atomic:readback', 'variable %s did not read back', fields{f});
        end
    end
catch err
    if exist(tmp, 'file')
        delete(tmp);
    end
    error('save_atomic:io', 'could not write %s (disk full?): %s', target, err.message);
end
if exist('rename', 'builtin')                     % Octave: POSIX rename
    [status, msg] = rename(tmp, target);
    if status ~= 0
        error('save_atomic:io', 'cannot rename %s to %s: %s', tmp, target, msg);
    end
else                                              % MATLAB
    [ok, msg] = movefile(tmp, target, 'f');
    if ~ok
        error('save_atomic:io', 'cannot move %s to %s: %s', tmp, target, msg);
    end
end
end
