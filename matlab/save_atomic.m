function save_atomic(target, variables, format, check, copy_of)
% SAVE_ATOMIC  Save the fields of struct VARIABLES to TARGET via a temporary file, then rename.
%
%   save_atomic(target, variables)                        MAT -v7 (compressed; markers)
%   save_atomic(target, variables, '-v6')                 uncompressed MAT (clips by default, derived caches)
%   save_atomic(target, variables, format, 'structure')   cheaper check of the written file (see below)
%   save_atomic(target, variables, format, check, copy_of)
%
% COPY_OF (optional): a file that holds exactly VARIABLES in FORMAT (e.g. a clip identical to the previous one,
% written by save_atomic): its bytes are copied to the temporary file instead of saving (and compressing) again;
% the check and the rename are the same.
%
% The temporary file (.partial_<name>) lives in the target's folder, so the rename is atomic on one file system.
% Octave's save does not fail on a full disk: it leaves a truncated file. The file is therefore checked before it
% is published; on any failure the temporary file is removed and an error names TARGET.
%   CHECK 'contents' (default): the file is loaded and every variable compared with VARIABLES.
%   CHECK 'structure': the file's own framing is read (a few bytes, no decompression): a MAT-file header, then
%     exactly one top-level element per variable, each element's tag (type and byte count) ending exactly where
%     the next one starts and the last one at the end of the file, and every compressed element starting with a
%     zlib header. A file truncated anywhere fails it. A file whose framing is not the expected one (another
%     writer's layout) is checked by 'contents' instead, so this check never accepts less than a complete file.
if nargin < 3 || isempty(format)
    format = '-v7';
end
if nargin < 4 || isempty(check)
    check = 'contents';
end
if nargin < 5
    copy_of = '';
end
if ~any(strcmp(check, {'contents', 'structure'}))
    error('save_atomic:check', 'unknown check %s: expected contents or structure', check);
end
[folder, name, ext] = fileparts(target);
tmp = fullfile(folder, ['.partial_' name ext]);
try
    if isempty(copy_of)
        save(tmp, '-struct', 'variables', format);
    else
        copy_bytes(copy_of, tmp);
    end
    fields = fieldnames(variables);
    if ~(strcmp(check, 'structure') && mat_framing_complete(tmp, numel(fields)))
        back = load(tmp);
        for f = 1:numel(fields)
            if ~isfield(back, fields{f}) || ~isequaln(back.(fields{f}), variables.(fields{f}))
                error('save_atomic:readback', 'variable %s did not read back', fields{f});
            end
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


function ok = mat_framing_complete(file, n_variables)
% True when FILE is a little-endian MAT 5 file (-v6/-v7) whose top-level elements, N_VARIABLES of them, account
% for every byte of the file (see the 'structure' check above).
ok = false;
fid = fopen(file, 'r', 'ieee-le');
if fid < 0
    return;
end
try
    fseek(fid, 0, 'eof');
    total = ftell(fid);
    fseek(fid, 0, 'bof');
    header = fread(fid, 128, 'uint8=>char')';
    ok = numel(header) == 128 && strncmp(header, 'MATLAB 5.0 MAT-file', 19) && strcmp(header(127:128), 'IM');
    pos = 128;
    count = 0;
    while ok && pos < total
        ok = fseek(fid, pos, 'bof') == 0;
        tag = fread(fid, 2, 'uint32=>double');
        ok = ok && numel(tag) == 2;
        if ok && tag(1) == 15                       % miCOMPRESSED: a zlib stream of tag(2) bytes
            zlib = fread(fid, 2, 'uint8=>double');
            ok = numel(zlib) == 2 && mod(zlib(1), 16) == 8 && mod(zlib(1) * 256 + zlib(2), 31) == 0;
            pos = pos + 8 + tag(2);
        elseif ok && tag(1) == 14                   % miMATRIX: padded to 8 bytes
            pos = pos + 8 + ceil(tag(2) / 8) * 8;
        else
            ok = false;
        end
        count = count + 1;
    end
    ok = ok && pos == total && count == n_variables;
catch
    ok = false;
end
fclose(fid);
end


function copy_bytes(source, target)
fid = fopen(source, 'r');
if fid < 0
    error('save_atomic:io', 'cannot read %s', source);
end
bytes = fread(fid, Inf, 'uint8=>uint8');
fclose(fid);
fid = fopen(target, 'w');
if fid < 0
    error('save_atomic:io', 'cannot create %s', target);
end
count = fwrite(fid, bytes, 'uint8');
status = fclose(fid);
if count ~= numel(bytes) || status ~= 0
    error('save_atomic:io', 'wrote %d of %d bytes of %s', count, numel(bytes), target);
end
end
