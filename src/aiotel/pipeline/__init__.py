"""Stage 4: the OpenTelemetry SDK side, from the probes' counts and spans to the exporters.

``providers`` builds the tracer and meter providers and exporters, the latter two in
the thread that ``background`` runs beside the first marked call; ``metrics`` hands the
probes' counts to the SDK's readers; ``resource`` says who is reporting; ``lifecycle``
keeps telemetry whole across fork and exit; ``redact`` keeps secrets out of what leaves;
``libraries`` activates the installed library instrumentations.
"""
