"""The Streamlit dashboard (app.py) and its Streamlit-free data layer (data.py)."""
