"""Command-line and YAML configuration of the training scripts (see ``options.config``)."""

from options.config import (
                            ConfigError,
                            build_parser,
                            config_differences,
                            config_to_dict,
                            parse_config,
                            read_yaml_config,
                            validate_config,
                            write_config,
)

__all__ = ["ConfigError", "build_parser", "config_differences", "config_to_dict",
           "parse_config", "read_yaml_config", "validate_config", "write_config"]
