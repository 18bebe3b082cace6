"""Configuration: the schemas Hydra composes against, the typed settings below ``run.py``,
the value checks a type cannot make, and the resolvers of ``conf/config.yaml``.

Importing :mod:`.schema` registers the schemas and resolvers. Below this package nothing
sees a DictConfig: :func:`.settings.to_settings` turns the composed config into dataclasses.
"""
