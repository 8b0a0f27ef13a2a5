"""Spanish patterns of the risk screen (and mixed Spanish/English), by category."""

from __future__ import annotations

from reminders.conversations.risk.vocab import DRUGS, PILLS, QUANTITY, TAKE, THIRD, Pattern, _p

PATTERNS_ES: list[Pattern] = [
    # --- Spanish: suicide risk
    *_p(
        "suicide_risk",
        "es",
        r"suicid\w*(?! (?:drills?|doors?|squeeze|sprints?|runs?|lines?|knot|slope))|matarme|matarse|me (?:voy|quiero|kiero|pienso|puedo) (?:a )?matar(?! de)|"
        r"(?:quitarme|quitarse|quito|quite) la vida|acabar con (?:mi vida|todo|esto|mi sufrimiento"
        r"|su vida)|(?:terminar|termino|terminar con) (?:mi vida|todo|con todo)",
        r"(?:quiero|kiero|quisiera|queria|deseo|ganas de|prefiero|ojala|quiero ya) "
        r"(?:morir\w*(?! de (?:la )?(?:verguenza|risa|hambre|sueno|ganas|pena|frio|calor|"
        r"aburrimiento|envidia|amor))|estar muert[oa]|desaparecer|dejar de existir|no existir|no despertar|"
        r"dormir para siempre|no estar|irme para siempre|ya no estar)",
        r"me quiero (?:morir|ir para siempre|desaparecer)(?! de (?:la verguenza|risa|hambre|"
        r"sueno|ganas|pena|frio|calor|aburrimiento))|(?:me|nos) (?:voy|vamos) a morir hoy|"
        r"ganas de (?:morirme|matarme|no vivir|desaparecer|no despertar)",
        r"(?:ojala|ojalá) (?:no )?(?:despert\w*|muera|me muera|estuviera muert[oa]|no hubiera nacido"
        r"|me muriera|no existiera|desapareciera|ya no estar)",
        r"(?:ya )?no (?:quiero|kiero|deseo|tengo ganas de|aguanto|puedo) (?:vivir|seguir|seguir "
        r"viviendo|despertar|existir|estar aqui|estar aca|seguir asi|mas con esto|mas con mi vida|"
        r"continuar|mas)",
        r"(?:ya )?no (?:aguanto|soporto|doy) mas|no puedo mas|ya no puedo(?! (?:ir|llegar|venir|"
        r"asistir|hacer|el|la|los|las|ese|esa|este|esta|manana|hoy|a|al|pagar|manejar|con el|con la"
        r"|comer|dormir|esperar|cambiar|cancelar|confirmar|trabajar|salir))|ya no aguanto(?! (?:el|"
        r"la|los|las|este|esta|ese|esa|a|al|mi|tanto))|(?:cansad[oa]|harto|harta) de (?:vivir|la "
        r"vida|existir|estar vivo|estar viva)|(?:no tengo|no hay) (?:nada )?(?:por|para) (?:que|q) "
        r"vivir|no hay salida|(?:esto|este) es (?:un|mi) adios|no (?:le )?(?:encuentro|"
        r"veo|tengo) (?:sentido|razon|razones) (?:a la vida|para vivir|de vivir|a vivir|a nada|a "
        r"seguir)|(?:la vida|vivir) no (?:tiene|vale la pena)|no vale la pena (?:vivir|seguir)",
        r"(?:estarian|estaran|estarian todos|estan|serian|seran|vivirian) (?:todos )?(?:mejor|"
        r"mas felices|bien) sin mi|(?:soy|ser) una carga|(?:mejor|prefiero) (?:muert[oa]|"
        r"morirme|no estar)",
        r"(?:pienso|pensando|pienso mucho|pensamientos?|pense|ideas?) (?:en|de) (?:morir\w*|matarme|"
        r"suicid\w*|la muerte|quitarme la vida|acabar|no estar|tirarme|aventarme)",
        r"(?:ya )?(?:lo )?(?:tengo|hice) (?:decidido|un plan|todo planeado|planeado)|ya lo decid\w*|"
        r"(?:esta|hoy en la) noche es la noche|hoy (?:es el dia|se acaba|termina todo)|"
        r"(?:mi|el) plan es",
        r"(?:este es|es) (?:mi|el) (?:ultimo|ultima) (?:mensaje|texto|vez|adios)|ultimo mensaje|"
        r"(?:carta|cartas|nota|notas|video) de despedida|(?:me|les) (?:despido|estoy despidiendo)(?!.{0,40}(?:nos vemos|hasta (?:luego|pronto|la "
        r"proxima|el|la)|el mes|la semana|gracias a todos))|"
        r"despedirme|adios (?:para siempre|a todos|mundo)|ya no me (?:van a|vas a|volveran a) (?:ver|"
        r"saber)|hasta nunca",
        r"(?:regale|regalando|regalar|doy|di) (?:mis|todas mis|a mi) (?:cosas|perro|perrito|gato|"
        r"gatito|mascotas|ropa)|(?:cuiden|cuida|cuidar|cuidan) (?:a|de) (?:mi|mis) (?:perro|"
        r"perrito|gato|gatito|hijos|hijas|mascotas|ninos|plantas)",
        r"(?:gracias|perdon|perdonen|perdoname) (?:por todo|por lo que)\b.{0,60}\b(?:adios|"
        r"despido|ultimo|ya no|nunca)",
        r"(?:tirarme|aventarme|lanzarme|me (?:aviento|tiro|lanzo|voy a (?:tirar|aventar|lanzar))|"
        r"me quiero (?:tirar|aventar|lanzar)|saltar) (?:del|de un|de una|de la|al|a las|a la|desde"
        r"|por) ?(?:puente|edificio|techo|azotea|balcon|piso|vias|tren|metro|carretera|"
        r"precipicio|ventana|acantilado)",
        r"(?:estoy|ando|me encuentro|parad[oa]) (?:en|arriba del|sobre el|encima del) (?:el )?"
        r"(?:puente|techo|azotea|balcon|vias|edificio|orilla)",
        r"(?:tengo|compre|consegui|agarre|cargue|cargada|cargado) (?:una |la |el |mi )?(?:pistola|"
        r"arma|revolver|escopeta|soga|cuerda|navaja|cuchilla|balas)(?! de (?:trabajo|cocina|caza|"
        r"carpintero|juguete))|(?:pistola|arma) (?:en|a|"
        r"contra) (?:la|mi) (?:cabeza|boca|sien)",
        r"(?:ahorcarme|colgarme|ahorcarse|colgarse|me (?:voy a|quiero) (?:ahorcar|colgar))|"
        r"(?<!con la )soga(?! al cuello)",
        r"(?:juntando|guardando|ahorrando|acumulando|junte|guarde) (?:mis |las |todas las )?"
        r"(?:pastillas|pildoras|medicinas|medicamentos|tabletas)",
        r"(?:el )?(?:carro|coche|auto|motor) (?:prendido|encendido) (?:en|dentro del) (?:el )?"
        r"(?:garaje|garage|cochera)|monoxido",
        r"(?:chocar|estrellar|estrellarme|aventar) (?:el|mi) (?:carro|coche|auto)",
    ),
    *_p(
        "suicide_risk",
        "es",
        r"(?:gustaria|quisiera|quiero|ojala|deseo|me encantaria|solo quiero|prefiero) (?:ya )?"
        r"(?:desaparecer|no existir|dejar de existir|morir\w*|no despertar|que se acabe|que (?:ya )?"
        r"no hubiera|irme de este mundo|que me (?:atropell\w*|mat\w*|pase algo))",
        r"me da igual (?:morir\w*|vivir o morir|si me muero)|ojala fuera hoy|mejor (?:me muero|"
        r"morirme|me mato|estar muert[oa])|(?:piso|nivel) mas alto\b.{0,30}\b(?:mirando|viendo) "
        r"(?:abajo|para abajo)|ya tengo (?:fecha|la fecha|el dia|dia y hora)|no voy a estar "
        r"(?:vivo|viva|aqui para)|(?:me voy a|voy a) quitar la vida|(?:escribi|deje) (?:cartas|una "
        r"carta|notas) (?:para|a) (?:mis|mi)|(?:alguien|que alguien) (?:vaya|pase|recoja|cuide) "
        r"(?:por|a) mi (?:perr\w*|gat\w*)|"
        r"(?:no va a|ya no va a) haber (?:proxima|otra|next)|(?:papeles|todo|to|cosas) en orden|"
        r"(?:ya )?arregle todo|no me (?:vuelvan a agendar|agenden mas|agenden)|ya no me manden "
        r"recordatorios|le pido a dios (?:que me lleve|no amanecer|no despertar|que ya me lleve)|"
        r"que dios me lleve|(?:voz|voces)\b.{0,40}\b(?:me mate|matarme|que me muera)|"
        r"(?:ya )?(?:se|tengo) (?:como y donde|como y cuando|donde y cuando)|(?:lo )?tengo "
        r"calculado|(?:despues|luego) se acabo|(?:no )?(?:haber|aber) (?:nacido|nasido)|me voy "
        r"con (?:el|ella|ellos)|(?:tirarme|aventarme|lanzarme) delante (?:del|de un|de una) "
        r"(?:metro|tren|carro|camion|bus)|(?:salirme|tirarme|aventarme) (?:del|de la) (?:overpass|"
        r"puente|carretera)|(?:cuide|cuiden|cuida) (?:a|de) (?:sus|mis) (?:kids|hijos|ninos|"
        r"hijas)|(?:se|que se) (?:me )?acab\w* (?:la vida|mi vida|todo)|(?:acabe|termine) mi vida|"
        r"no (?:hubiera|haya) (?:un )?manana|ya no quiero (?:nada|estar|seguir|existir)|irme de "
        r"este mundo|por mi propia mano|para (?:que|q) (?:sigo|seguir) (?:respirando|viviendo|aqui)|"
        r"(?<!que )(?<!q )(?:me|te) (?:mato|matare|voy a matar)\b(?! (?:de|la|el|con|"
        r"the|that))|se acaba todo|(?:lo|la) voy a hacer|voy a "
        r"(?:hacerlo|quitarme)|ya no voy a (?:estar|existir|seguir)|mi (?:ultima|ultimo) (?:semana|dia|noche|cita)(?! (?:de|del|en|"
        r"con|antes|aqui|trabajando))|ya (?:esta|lo tengo|lo tenia|tengo) (?:decidido|todo|el plan|"
        r"planeado)|(?:escogi|elegi|decidi) (?:como|cuando|el dia|la fecha)|(?:esta|hoy en la) "
        r"noche (?:me|lo|se|es)|is the day",
        r"(?:testamento|seguro de vida|ultima voluntad)|(?:di|regale|repart\w*|deje) (?:mi|mis|"
        r"a mi|todas mis) (?:gato|gata|perro|perra|guitarra|ropa|prendas|cosas|joyas|mascotas)|"
        r"(?:ya )?me despedi(?! del? (?:trabajo|empleo|jefe|equipo|job))|(?:deje|escribi) (?:una|mi|las) (?:carta|cartas|nota|notas)|antes de "
        r"irme|(?:ya )?no me (?:esperen|busquen|llamen)|no fue (?:su|tu) culpa|(?:te|les) dejo mi "
        r"despedida|gracias por (?:todo|intentarlo)\b.{0,40}\b(?:adios|bye|despido|ya no|irme|"
        r"verdad)|(?:digan|diganle|dile|diles) a mi \w+ que (?:la|lo|los|las) quiero|"
        r"(?:fue un gusto|hasta siempre|nos vemos en otra vida)",
        r"(?:junt\w*|guard\w*|ahorr\w*|acumul\w*|saved up|tengo|consegui|compre) (?:como |unas |"
        r"unos |mis |las |todas (?:mis|las) )?(?:\d+ )?(?:de (?:la|el|las|los) )?(?:\w+ )?"
        r"(?:pastillas|pildoras|fentanilo|cloro|quetiapina|clonazepam|rivotril|pistola|arma|"
        r"revolver|escopeta|cuchillo|navaja|soga|cuerda|veneno|balas)(?! de (?:trabajo|cocina|caza|"
        r"carpintero|juguete|pesca))",
        r"(?:pistola|arma|revolver|escopeta|cuchillo|navaja|cuchilla)\b.{0,30}\b(?:en la mano|"
        r"en la mesa|aqui|en la boca|cargad[oa])|(?:lo|la) tengo en la mano|con la (?:escopeta|"
        r"pistola)|(?:junto|cerca) (?:a|de) las vias|(?:que|q) pase el tren|puerta del (?:garage|"
        r"garaje) cerrada|motor (?:prendido|encendido)",
        r"(?:en|on) (?:la|el|the) (?:azotea|puente|vias|techo|roof|bridge|orilla)\b.{0,30}\b(?:"
        r"alto|high|estoy|aqui|viendo|ahora)|(?:estoy|toy|aqui estoy)\b.{0,15}\b(?:azotea|puente|"
        r"vias|techo|roof|bridge|edificio)|bridge aqui estoy|aqui estoy viendo el agua",
    ),
    *_p(
        "self_harm",
        "es",
        r"reca\w* (?:con|en) (?:las cortadas|los cortes|cortarme)|cortadas|me hice (?:cortes|"
        r"cortadas|heridas)|golpeando la cabeza contra|hasta que sangre|(?:con el|con un) "
        r"(?:encendedor|cigarro|cigarrillo)|a proposito\b.{0,40}\b(?:pegue|golpee|corte|queme)|"
        r"(?:pegue|golpee|corte|queme)\b.{0,40}\ba proposito|"
        r"(?:me )?volvi a (?:cortar|quemar|lastimar|hacer dano)|(?:me|se) (?:hice|hizo|ise) dano|"
        r"me di (?:punos|golpes|cabezazos)|cortes (?:frescos|nuevos|en (?:las munecas|los brazos|"
        r"las piernas))|(?:no|ya no) para de sangrar|(?:fotos|foto) de (?:cortes|heridas)",
        r"(?:me|se|te) (?:corte|corto|cortaba|cortó|corta|cortas|estoy cortando|quem\w*|"
        r"lastim\w*|hice dano|hago dano|hizo dano|golpe\w*|rasgu\w*|rayo|raye)(?! (?:(?:el|la|los|"
        r"las|un|una|mi|mis) (?:pelo|cabello|fleco|flequillo|unas|una|dedo|barba|bigote|puntas|hair|"
        r"pie|rodilla|lengua)|con (?:una|un|el|la) (?:hoja|papel|cuchillo de cocina|lata|sarten|"
        r"olla|plancha del pelo)|cocinando|afeitando|sin querer|the hair|my hair))|cortarme|cortarse|"
        r"cortandome|cortandose|quemarme|quemandome|lastimarme|lastimandome|hacerme dano|"
        r"autolesion\w*|auto lesion\w*",
        r"(?:cortes|cortadas|heridas|quemaduras) (?:en|nuevas|frescas|profundas)|"
        r"(?:no|ya no) (?:para|deja) de sangrar|necesito puntadas",
    ),
    *_p(
        "overdose",
        "es",
        rf"sobredosis|{TAKE} (?:como |unas |unos |casi |mas de )?(?:{QUANTITY}) (?:de )?"
        rf"(?:mis |las |sus |los )?(?:\w+ )?(?:{PILLS}|{DRUGS}|pastillas)",
        rf"{TAKE} (?:mis|las|sus|todas mis|todas las) (?:\w+ )?(?:{PILLS}|{DRUGS})\b.{{0,40}}\b"
        r"(?:todas|frasco|caja|muchas|con alcohol|con vino|con cerveza|a proposito|de golpe)",
        r"(?:me )?(?:bebi|tome|he tomado|trague|tomo|tome) (?:media botella de|un vaso de|una "
        r"caja (?:entera )?de|un pote de|un frasco de|todas|las de (?:mi|su) \w+ todas)|"
        r"(?:me tome|tome|trague)\b.{0,40}\btodas\b|(?:hice|did) (?:una tonteria|something "
        r"(?:stupid|dumb)) (?:con|with) (?:mis|my) (?:medicinas|pastillas|meds|pills|medicamentos)|"
        r"(?:todos|todas) (?:los|las) \w+ que (?:tenia|habia)|(?:me tome|tome)\b.{0,40}\b(?:juntos|"
        r"juntas|de golpe|de una vez)|"
        r"me pase (?:de|con) (?:las |el |la |mis |los )?(?:pastillas|pildoras|fentanilo|"
        r"medicinas|medicamentos|tabletas|clonazepam|rivotril|xanax|alprazolam|dosis)|anticongelante|a proposito\b.{0,30}\b"
        r"(?:pastillas|tome|me pase)|(?:pastillas|me pase|tome)\b.{0,30}\ba proposito|"
        r"(?:drank|bebi|tome) (?:cloro|lejia)",
        r"(?:tome|tomo|bebi|bebio|trague) (?:cloro|lejia|veneno|raticida|insecticida|"
        r"limpiador)|(?:pastillas|pildoras) (?:con|y) (?:alcohol|vino|cerveza|tequila|ron|cana|guaro|"
        r"licor|whisky|vodka|aguardiente|chelas|mezcal)",
    ),
    *_p(
        "medical_emergency",
        "es",
        r"dolor (?:en el|de|del) pecho|(?:me|le) duele (?:mucho )?el pecho|presion en el pecho|"
        r"(?:un )?infarto|ataque al corazon",
        r"no (?:puedo|puede|podia|podemos) respirar|(?:me|le) (?:falta|cuesta|costaba) "
        r"(?:el aire|respirar)|no respira|dificultad para respirar|se (?:esta )?ahog\w*|"
        r"(?:se|esta) (?:puso|poniendo) morad\w*|labios morados",
        r"no (?:despierta|reacciona|responde|abre los ojos|se despierta)|inconsciente|"
        r"sin (?:reaccionar|responder|respirar)|no (?:lo|la) (?:puedo|podemos) despertar",
        r"(?:me|se|le) (?:voy|va) a desmayar|(?:presion|pulso)\b.{0,40}\b(?:\d{3}|muy lento|"
        r"lentisimo|muy alta)|(?:costando|cuesta|cuesta mucho) (?:mucho )?respirar|ruido al "
        r"respirar|(?:poniendo|puso) fri[oa]|garganta se (?:esta )?cerrando|se (?:pego|golpeo) en "
        r"la cabeza|(?:esta|estoy) sangrando|(?:late|latiendo) (?:rapidisimo|muy rapido)",
        r"convuls\w*|(?:un|una) (?:ataque|crisis) (?:epileptic\w*|convulsiv\w*)|temblando (?:sin "
        r"parar|todo)",
        r"(?:se|me) desmay\w*|desmayad[oa]|(?:se|me) (?:cayo|cai) (?:al piso|redond[oa]|y no)|"
        r"perdio el conocimiento|perdi el conocimiento",
        r"(?:se|me|le) (?:le )?(?:esta )?(?:cierra|cerrando|hincha|hinchando|hincho) (?:la garganta"
        r"|los labios|la lengua|la cara)|ronchas (?:por todo|en todo)|reaccion alergica",
        r"(?:el corazon|la presion) (?:me |le )?(?:late|va|esta) (?:muy |super )?(?:rapido|alta|"
        r"a mil).{0,30}(?:dolor|pecho|mareo|miedo)|derrame|embolia|(?:boca|cara) chueca|"
        r"no (?:puede|puedo) (?:mover|hablar)|(?:vomitando|vomita) sangre|ambulancia|"
        r"(?:llam\w*|marcar|marque) (?:al )?911|urgencias (?:ya|ahora)",
    ),
    *_p(
        "third_party_marker",
        "es",
        rf"(?:soy|habla|le escribe|te escribe|les escribe|aqui) (?:su|la|el|tu|un|una) {THIRD}",
        r"es paciente de (?:ustedes|la clinica|su clinica)|(?:mi|su) \w+ (?:que )?es paciente|"
        r"soy (?:la|el) \w+ de \w+",
    ),
    *_p(
        "third_party",
        "es",
        r"(?:dice|dijo|diciendo) que (?:esta noche|ya no|se va|es la ultima|se mata|se quiere)|"
        r"no (?:la|lo) (?:encuentro|encontramos)|no sabemos donde esta|(?:dejo|escribio) (?:notas|"
        r"cartas|una carta)|(?:lo|la) encontre con|encontre (?:cloro|pastillas|cortes|una carta)|"
        r"(?:mandó|mando|envio) (?:fotos|un mensaje)\b.{0,30}\b(?:cortes|adios|despedida)|"
        r"mensaje diciendo adios",
        r"(?:el|ella|mi \w+) (?:dice|dijo|quiere|esta|se|tomo|no)\b.{0,40}\b(?:morir|matar\w*|"
        r"suicid\w*|pastillas|pistola|sobredosis|respira|despierta|reacciona|desmay\w*|"
        r"convulsi\w*|sangr\w*|cort\w*|encerr\w*|despedida|ambulancia|911|hospital)(?! de (?:un "
        r"susto|risa|coraje|hambre|los nervios|verguenza))",
    ),
    *_p(
        "harm_to_others",
        "es",
        r"(?:voy a|quiero|kiero|ganas de) (?:matar|lastimar|envenenar|apunalar|disparar) (?:a|al) "
        r"(?:mi|mis|su|ese|esa|el|la)\b",
    ),
    *_p(
        "distress",
        "es",
        r"sin esperanza|desesperad[oa]|no (?:paro|dejo) de llorar|(?:me siento|estoy) (?:muy |tan )?"
        r"(?:sol[oa]|vaci[oa]|mal|deprimid[oa]|perdid[oa])|(?:lo peor|el peor dia)|"
        r"(?:para que|pa que) (?:sigo|seguir)|(?:a nadie|nadie) (?:le importo|me extra\w*)|"
        r"odio mi vida|no sirvo para nada|me (?:rindo|doy por vencid[oa])|crisis de "
        r"(?:ansiedad|panico)",
    ),
]
