// Empty: the translation unit that owns a shared precompiled header (cmake/pch.cmake).
