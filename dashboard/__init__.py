"""Streamlit dashboard over the dataset and results formats (``streamlit run dashboard/app.py``)."""
