"""What every path template is held to, whichever way it renders (templating.py without jinja2,
template_sandbox.py with it): the sizes, and the one error a bad template raises."""

MAX_TEMPLATE = 1024
MAX_RENDERED = 4096
MAX_INT_BITS = 8192  # ~2,500 digits: far beyond any path, well below Python's 4,300-digit str() limit


class TemplateProblem(ValueError):
    pass
