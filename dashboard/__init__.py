"""Streamlit dashboard over the dataset and results formats (``streamlit run streamlit_app.py``)."""
