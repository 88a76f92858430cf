"""Serving the pipeline beyond one process: an HTTP service with a web page (``app``) and whole datasets on Ray
(``ray_engine``)."""
