// Keeps a module with no sources yet linkable.
