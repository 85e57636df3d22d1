"""``streamlit run streamlit_app.py``: the dashboard's entry point (the file name Streamlit Community Cloud looks for).

It sits at the repository root because Streamlit switches to its legacy multipage mode when a ``pages/`` folder lies
beside the script it runs; the frame is ``dashboard/app.py`` and the pages are ``dashboard/pages/*.py``.
"""

from dashboard.app import main

main()
