"""Training data: mined episodes and eval tasks as rows for TRL (`dataset export`)."""

#: TRL's conversational formats (here, not in `export`: the command line needs them
#: and must not import the pipeline to build its parser).
MESSAGES, PROMPT_COMPLETION = "messages", "prompt-completion"
FORMATS = (MESSAGES, PROMPT_COMPLETION)
