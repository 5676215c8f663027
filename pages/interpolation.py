import streamlit as st

st.title("(in progress)")
