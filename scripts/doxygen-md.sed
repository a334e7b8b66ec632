# Doxygen input filter for chapters/*.md (Doxyfile FILTER_PATTERNS): the
# chapters link figures and sources relative to chapters/, as GitHub wants;
# Doxygen wants an image's bare name (found in IMAGE_PATH, copied into the
# HTML) and a file reference. Line numbers are kept (substitutions only).
s#(!\[[^]]*\])\(\.\./figures/([^)]*)\)#\1(\2)#g
s#(\[[^]]*\])\(\.\./(src/[^)#]*)(\#[^)]*)?\)#\1(@ref \2)#g
