"""The dashboard's pages, one module each: a thin ``render(dataset, results)`` over ``dashboard.logic``.

Named ``views``, not ``pages``: Streamlit runs a ``pages/`` folder beside the main script as its legacy multipage
app, which takes over ``st.navigation``'s first run (the page went blank after the first widget change).
"""
