from pressreview.cli import main

main(prog_name="pressreview")
