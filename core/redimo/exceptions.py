"""redis-py's exception classes, which Redimo raises exactly as redis-py does."""

import redis.exceptions as _redis_exceptions

__all__ = [name for name, value in vars(_redis_exceptions).items()
           if isinstance(value, type) and issubclass(value, BaseException)]
globals().update({name: getattr(_redis_exceptions, name) for name in __all__})
