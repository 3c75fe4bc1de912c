from tuimail.cli import main

raise SystemExit(main())
