function ensure_dir(folder)
% ENSURE_DIR  Create FOLDER and its missing parents; a folder that already exists is success.
%
%   ensure_dir(folder)
%
% Several regions may be extracted at the same moment into one fresh source folder, and they share parent folders
% (nmm_<filename>/, clip_info/iter<m>/, clip_windows/). Octave's mkdir checks whether the folder exists and then
% creates it: when another process creates it in between, mkdir fails with "File exists". Here every missing
% level is created by its own mkdir, and a failed mkdir counts as success when the folder exists afterwards
% (another process made it). Any other failure is an error naming the folder.
if isfolder(folder)
    return;
end
parent = fileparts(folder);
if ~isempty(parent) && ~strcmp(parent, folder) && ~isfolder(parent)
    ensure_dir(parent);
end
[ok, msg] = mkdir(folder);
if ~ok && ~isfolder(folder)
    error('ensure_dir:io', 'cannot create folder %s: %s', folder, msg);
end
end
