"""The dashboard's pages, one module each: a thin ``render(dataset, results)`` over ``dashboard.logic``.

Streamlit's own ``pages/`` convention is not used: ``dashboard/app.py`` builds the navigation with ``st.navigation``,
and the entry script (``streamlit_app.py``) lives at the repository root so Streamlit never sees this folder beside
it (it would run it as its legacy multipage app, which takes over ``st.navigation``'s first run).
"""
