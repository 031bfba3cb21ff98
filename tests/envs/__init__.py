"""Tests of the envs package."""
