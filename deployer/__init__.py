"""Ships the package the emulator tested to UbiOps (`python -m deployer push`); see issue 5."""
