from tuimail.cli.main import main

raise SystemExit(main())
